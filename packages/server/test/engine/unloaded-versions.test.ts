// Machine versions come and go (every deploy checks and loads a new one); the sandbox drops the
// old ones once it holds more than its limit, unless something of them still runs there (see
// test/runtime/sandbox-version-unload.test.ts). Before, each stayed loaded (its bundle and its own
// XState) for the life of the process, so a sandbox grew with every version it had ever seen
// until the memory check killed it mid-work.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { systemClock } from "../../src/engine/clock.js";
import { ORG, startHarness, type Harness } from "../support/engine-harness.js";

const alice = { sub: "alice" };
let h: Harness;

before(async () => {
  h = await startHarness({
    clock: systemClock,
    sandboxSize: 1,
    maxVersionsPerProcess: 1,
  });
});
after(() => h.dispose());

const bumps = async (where: { machineName: string; instanceName: string }) => {
  const state = await h.engine.sendEvent({
    orgId: ORG,
    ...where,
    event: "bump",
    authContext: alice,
  });
  return (state.publicContext as { bumps: number }).bumps;
};

test("an old version nothing runs in is dropped from its sandbox once newer ones load", async () => {
  const old = {
    machineName: await h.deploy("module-count-v5.js", "v5-import", "old"),
    instanceName: "i",
  };
  await h.engine.createInstance({ orgId: ORG, ...old, authContext: alice });
  assert.equal(await bumps(old), 1);
  assert.equal(await bumps(old), 2);

  await h.deploy("module-count-v5.js", "v5-import", "newer"); // loads another version

  assert.equal(await bumps(old), 1, "the old version's context was dropped and loaded afresh");
});
