// The machine both sides of the engine benchmark run: a toggle that counts its flips.
import { assign, createMachine } from "xstate";

export const toggleSource = `
import { assign, createMachine } from "xstate";
export default createMachine({
  id: "toggle",
  initial: "off",
  context: { public: { flips: 0 } },
  states: {
    off: { on: { toggle: { target: "on", actions: assign({ public: ({ context }) => ({ flips: context.public.flips + 1 }) }) } } },
    on: { on: { toggle: { target: "off", actions: assign({ public: ({ context }) => ({ flips: context.public.flips + 1 }) }) } } },
  },
});
export const allowRead = () => true;
export const allowWrite = () => true;
`;

/** The same machine, in-process, for the hand-written baseline. */
export const toggleMachine = createMachine({
  id: "toggle",
  initial: "off",
  context: { public: { flips: 0 } },
  states: {
    off: {
      on: {
        toggle: {
          target: "on",
          actions: assign({ public: ({ context }) => ({ flips: context.public.flips + 1 }) }),
        },
      },
    },
    on: {
      on: {
        toggle: {
          target: "off",
          actions: assign({ public: ({ context }) => ({ flips: context.public.flips + 1 }) }),
        },
      },
    },
  },
});
