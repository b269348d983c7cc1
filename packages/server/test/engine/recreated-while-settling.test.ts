// A request waiting for its instance's services to settle is answered with the state its own
// instance reached, or not-found once it is deleted. When that instance is deleted meanwhile and
// made again under its name, the new one is another instance: the request answered with its
// state (whose allowRead was never asked) as if it were its own.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ORG, startHarness, type Harness } from "../support/engine-harness.js";

const alice = { sub: "alice" };
let h: Harness;

before(async () => {
  h = await startHarness({ settleTimeoutMs: 3_000 });
  await h.deploy("workflow-v5.js", "v5-import", "recreated");
});
after(() => h.dispose());

test("a send waiting to settle does not answer with the state of an instance made again under its name", async () => {
  const where = { orgId: ORG, machineName: "recreated", instanceName: "r1" };
  await h.engine.createInstance({ ...where, authContext: alice });
  const hung = h.engine
    .sendEvent({ ...where, event: "hang", authContext: alice })
    .catch((err: unknown) => err);
  while ((await h.engine.inspectInstance(where)).state !== "hanging") {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const deleting = h.engine.deleteInstance(where);
  const creating = h.engine.createInstance({
    ...where,
    context: { public: { count: 0, note: "bob's" } },
    authContext: alice,
  });
  await deleting;
  await creating;
  const answer = await hung;
  assert.notEqual(
    (answer as { publicContext?: { note?: string } }).publicContext?.note,
    "bob's",
    "answered with the new instance's state",
  );
  // Its own instance is gone, as when it is only deleted.
  assert.equal((answer as { code?: string }).code, "not-found");
});
