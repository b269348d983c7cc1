// The XState v4 driver, for bundles built the State Backed way (xstate 4 inlined, or imported as
// `npm:xstate`). v4's `machine.transition(state, event)` is pure: it returns the next State with
// the actions still to run, which lets effects wait for the commit as in v5.
import type { JsonObject, JsonValue, MachineEvent } from "../adapter-protocol.js";
import type { DriverStep, MachineDriver } from "./driver.js";
import {
  autoForwarded,
  toDriverStep,
  type V4Machine,
  type V4State,
  type V4StepHooks,
} from "./v4-step.js";
import { startV4Service } from "./v4-services.js";

const HOOKS: V4StepHooks = { startService: startV4Service };

export function createV4Driver(machine: V4Machine): MachineDriver {
  // v4 builds each state node's `after` timers lazily, the first time the machine initializes.
  // `machine.transition` on a machine that never computed its initial state would enter states
  // without their delayed events, so initialize it now.
  const init = (machine as { _init?: () => void })._init;
  if (typeof init === "function") init.call(machine);
  else void machine.initialState;
  return {
    xstateVersion: 4,
    machineId: machine.id,
    initial(context: JsonObject): DriverStep {
      const own = machine.context;
      const merged = { ...(typeof own === "object" ? own : undefined), ...context };
      const state = machine.withContext(merged).initialState;
      return stoppingWhenDone(state, toDriverStep(machine, state, state.actions, HOOKS));
    },
    transition(persisted: JsonValue, event: MachineEvent): DriverStep {
      const state = machine.resolveState(persisted);
      // The interpreter stops once its machine is done and ignores events; the pure
      // `transition` would still take a root-level transition out of the final state.
      if (state.done) return toDriverStep(machine, state, [], HOOKS);
      const next = machine.transition(state, event);
      const step = stoppingWhenDone(next, toDriverStep(machine, next, next.actions, HOOKS));
      // XState 4's interpreter hands each event it takes to its `autoForward` children first.
      const forwarded = autoForwarded(state).map((serviceId) => ({ serviceId, event }));
      step.effects.serviceMessages.unshift(...forwarded);
      return step;
    },
    view(persisted: JsonValue) {
      const state = persisted as { value: JsonValue; context: unknown };
      return { value: state.value, context: state.context };
    },
  };
}

/**
 * XState 4's interpreter stops when its machine reaches its final state, and with it every
 * service still running: those invoked by the states the final step did not leave (the root's).
 * The pure `transition` names no stop for them, so the step does: they end with the machine
 * rather than keeping it pending until the settle deadline. One the same step started is
 * started and stopped at once, as the interpreter does.
 */
function stoppingWhenDone(state: V4State, step: DriverStep): DriverStep {
  if (!state.done) return step;
  const { data, effects } = step;
  for (const node of state.configuration ?? []) {
    for (const { id } of node.invoke ?? []) {
      const started = effects.services.find((service) => service.id === id);
      if (started) {
        effects.services = effects.services.filter((service) => service !== started);
        effects.actions.push(() => started.starter(() => {}).stop());
      }
      if (!data.servicesStopped.includes(id)) data.servicesStopped.push(id);
    }
  }
  return step;
}
