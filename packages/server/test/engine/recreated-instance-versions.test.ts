// An instance deleted on another node and made again under its name with another machine version,
// while a service of the deleted one still runs here: the node tracked one version per instance
// name (the one of the first run it saw), so a stop of the new instance's services (at the settle
// deadline, or on a pause notice) went to the old version's code, where nothing of them runs, and
// they ran on; and a new run with the id of an old one took its place, so the old one was never
// stopped. Each run now carries its own version, and every stop goes to the code that started it.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, test } from "node:test";
import type { ManualClock } from "../../src/engine/clock.js";
import type { VersionRef } from "../../src/runtime/machine-runtime.js";
import { ORG, startHarness, type Harness } from "../support/engine-harness.js";

const MACHINE = "recreated";
const SETTLE_MS = 60_000;
const alice = { sub: "alice" };
const where = { orgId: ORG, machineName: MACHINE, instanceName: "r1" };

let h: Harness;
/** Every stop the engine asked of the runtime: the version it went to, and the services. */
let stops: Array<{ versionId: string; serviceIds: string[] }>;
/** Steps whose effects (services) the sandbox has started. */
let executed: number;

async function until(what: string, predicate: () => boolean | Promise<boolean>) {
  for (let i = 0; i < 250; i++) {
    if (await predicate()) return;
    await sleep(20);
  }
  assert.fail(`timed out waiting for ${what}`);
}

beforeEach(async () => {
  h = await startHarness({ settleTimeoutMs: SETTLE_MS });
  stops = [];
  executed = 0;
  const runtime = h.runtime;
  const stopServices = runtime.stopServices.bind(runtime);
  runtime.stopServices = (version: VersionRef, ref: string, serviceIds: string[]) => {
    stops.push({ versionId: version.versionId, serviceIds });
    return stopServices(version, ref, serviceIds);
  };
  const execute = runtime.execute.bind(runtime);
  runtime.execute = async (version: VersionRef, stepId: string, ref: string) => {
    const answer = await execute(version, stepId, ref);
    executed++;
    return answer;
  };
});
afterEach(() => h.dispose());

/**
 * Sends `event` and waits until the services its step calls for run; the answer comes later
 * (wrapped: an async function's returned promise would be waited for).
 */
async function startServices(event: unknown): Promise<{ answered: Promise<unknown> }> {
  const before = executed;
  const answered = h.engine
    .sendEvent({ ...where, event, authContext: alice })
    .catch((err: unknown) => err);
  await until("the step's services to start", () => executed > before);
  return { answered };
}

async function versionOfRow(): Promise<{ id: number; sequence: number; versionId: string }> {
  const row = await h.store.loadInstance(where);
  assert.ok(row, "the instance exists");
  return { id: row.id, sequence: row.sequence, versionId: row.machineVersionId };
}

/**
 * Version 1's instance runs `never` here; another node deletes it and a version 2 is made current
 * (this node hears of neither), then this node creates the instance again and sends it `event`.
 */
async function recreatedUnderV2(event: unknown) {
  await h.deploy("workflow-v5.js", "v5-import", MACHINE);
  await h.engine.createInstance({ ...where, authContext: alice });
  const old = await startServices("hang");
  const v1 = await versionOfRow();
  assert.ok(await h.store.deleteInstance(where));
  await h.deploy("workflow-v5.js", "v5-import", MACHINE);
  // Its answer waits for the old run too: this node takes it for the instance's own until it hears
  // of the delete (or the deadline passes).
  const created = h.engine
    .createInstance({ ...where, context: { delayMs: 600_000 }, authContext: alice })
    .catch((err: unknown) => err);
  await until(
    "the instance made again",
    async () => (await h.store.loadInstance(where)) !== undefined,
  );
  const recreated = await startServices(event);
  const v2 = await versionOfRow();
  assert.notEqual(v2.versionId, v1.versionId);
  assert.notEqual(v2.id, v1.id);
  return { v1, v2, answers: [old.answered, created, recreated.answered] };
}

const sorted = (list: typeof stops) =>
  [...list].sort((a, b) => a.versionId.localeCompare(b.versionId));

describe("services of an instance made again under another version", () => {
  test("at the settle deadline, each service's stop goes to the version that started it", async () => {
    // `start` invokes `double` (answering after delayMs: never, here) beside the old `never`.
    const { v1, v2, answers } = await recreatedUnderV2("start");
    (h.clock as ManualClock).advance(SETTLE_MS + 1);
    await Promise.all(answers);
    assert.deepEqual(
      sorted(stops),
      sorted([
        { versionId: v1.versionId, serviceIds: ["never"] },
        { versionId: v2.versionId, serviceIds: ["double"] },
      ]),
    );
  });

  test("a new run with an old run's id stops the old one, and a pause notice stops the new one in its version", async () => {
    const { v1, v2, answers } = await recreatedUnderV2("hang");
    // The old row's `never` belongs to nothing: replaced, it is stopped in version 1.
    assert.deepEqual(stops, [{ versionId: v1.versionId, serviceIds: ["never"] }]);
    h.engine.pausedElsewhere(where, v2.sequence, v2.id);
    await Promise.all(answers);
    assert.deepEqual(stops, [
      { versionId: v1.versionId, serviceIds: ["never"] },
      { versionId: v2.versionId, serviceIds: ["never"] },
    ]);
  });
});
