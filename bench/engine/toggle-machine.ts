// The machine both sides of the engine benchmark run: a toggle that counts its flips.
import { build } from "esbuild";
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

/** The name of the i-th instance both sides create. */
export const instanceName = (i: number) => `i${i}`;

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

/** The bundle Backstate runs: the source above, with xstate left for the runtime to provide. */
export async function bundleToggle(): Promise<string> {
  const result = await build({
    stdin: { contents: toggleSource, loader: "js", resolveDir: process.cwd() },
    bundle: true,
    write: false,
    format: "esm",
    platform: "browser",
    minify: true,
    external: ["xstate"],
  });
  return result.outputFiles[0]?.text ?? "";
}
