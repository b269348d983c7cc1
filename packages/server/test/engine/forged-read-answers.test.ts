// A read answer is machine code's to forge (the adapter shares its context with the bundle): only
// a literal `true` lets a caller read, as allowRead's own contract has it.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ORG, startHarness, type Harness } from "../support/engine-harness.js";

const alice = { sub: "alice" };
const at = { orgId: ORG, machineName: "forger", instanceName: "f1" };
let h: Harness;

before(async () => {
  h = await startHarness({});
  await h.deploy("read-forger-v5.js", "v5-import", "forger");
  await h.engine.createInstance({ ...at, authContext: alice });
});
after(() => h.dispose());

test("a read answer that is truthy but not true lets nobody read", async () => {
  await assert.rejects(h.engine.readInstance({ ...at, authContext: alice }), {
    code: "rejected-by-machine-authorizer",
  });
  const instance = await h.store.loadInstance(at);
  assert.ok(instance);
  assert.equal(await h.engine.canRead(instance, alice), false);
});
