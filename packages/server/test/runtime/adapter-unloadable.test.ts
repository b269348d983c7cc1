// The real adapter's answer to "may the sandbox drop this version?": not while a step of it waits
// for its execute, nor while a service it started runs; yes once both are over. A wrong yes would
// lose a running service with its context; a wrong no would keep every version loaded.
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import type { StepResponse } from "../../src/runtime/adapter-protocol.js";
import { SandboxPool } from "../../src/runtime/sandbox-pool.js";
import { ADAPTER_PATH } from "../../src/runtime/vendor-paths.js";
import { target } from "./sandbox-helpers.js";

// Module state lives in the version's context: a count that starts again means a fresh context.
const MACHINE = `
import { assign, createMachine, fromPromise } from "xstate";
let bumps = 0;
export default createMachine({
  id: "held",
  initial: "idle",
  context: { public: { bumps: 0 } },
  states: {
    idle: { on: { bump: { actions: assign({ public: () => ({ bumps: ++bumps }) }) }, hold: "holding" } },
    holding: { invoke: { id: "forever", src: fromPromise(() => new Promise(() => {})) }, on: { release: "idle" } },
  },
});
export const allowRead = () => true;
export const allowWrite = () => true;
`;

const instanceRef = "org_a/held/i";
let pool: SandboxPool | undefined;
afterEach(() => pool?.close());

test("a version is dropped only once no step of it waits and no service of it runs", async () => {
  pool = new SandboxPool({ adapterPath: ADAPTER_PATH, size: 1, maxVersionsPerProcess: 1 });
  const sandboxes = pool;
  const [held, second, third, fourth] = [1, 2, 3, 4].map(() => target("org_a", MACHINE));
  const call = async (op: string, payload: object) =>
    JSON.parse(
      await sandboxes.call(held!, op, JSON.stringify(payload), { affinity: instanceRef }),
    ) as StepResponse & { executed?: boolean };
  const step = async (op: string, payload: object) => {
    const response = await call(op, payload);
    assert.equal(response.outcome, "step");
    return (response as Extract<StepResponse, { outcome: "step" }>).step;
  };
  const load = (other: typeof held) => sandboxes.call(other!, "inspect", "{}");
  const send = (snapshot: unknown, type: string) =>
    step("send", { instanceName: "i", snapshot, event: { type } });
  const bumpsOf = (s: { publicContext?: unknown }) => (s.publicContext as { bumps: number }).bumps;

  const created = await step("create", { instanceName: "i", context: {} });
  const bumped = await send(created.snapshot, "bump");
  assert.equal(bumpsOf(bumped), 1);
  const holding = await send(bumped.snapshot, "hold");
  assert.equal(holding.effectsPending, true);

  await load(second); // the step waits for its execute: kept
  assert.equal((await call("execute", { stepId: holding.stepId, instanceRef })).executed, true);
  await load(third); // the service runs: kept
  const released = await send(holding.snapshot, "release");
  await call("execute", { stepId: released.stepId, instanceRef }); // stops the service
  assert.equal(bumpsOf(await send(released.snapshot, "bump")), 2, "the context was kept");
  assert.equal(held!.loads, 1);

  await load(fourth); // nothing of it is left: dropped
  assert.equal(bumpsOf(await send(released.snapshot, "bump")), 1, "the context was dropped");
  assert.equal(held!.loads, 2);
});
