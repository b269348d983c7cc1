// A sandbox's answer is JSON parsed on the server's main thread, which every org shares, and the
// parse takes time by the objects and arrays it holds, not by its size: a hostile bundle that pads
// its step answers with millions of empty objects held the main thread for seconds per event.
// Such an answer is refused before it is parsed (MAX_SANDBOX_JSON_CONTAINERS), as the machine's
// error; the step is not stored and the instance goes on.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { systemClock } from "../../src/engine/clock.js";
import { MAX_SANDBOX_JSON_CONTAINERS } from "../../src/runtime/json-check.js";
import { ORG, startHarness, type Harness } from "../support/engine-harness.js";

const anyone = { sub: "x" };
const where = { orgId: ORG, machineName: "padded", instanceName: "p1" };
let h: Harness;

before(async () => {
  h = await startHarness({ clock: systemClock });
  await h.deploy("padded-answer-v5.js", "v5-import", "padded");
  await h.engine.createInstance({ ...where, authContext: anyone });
});
after(() => h.dispose());

const historyOf = async () =>
  (await h.store.listTransitions(where, { limit: 10 })).map(
    (row) => (JSON.parse(row.event) as { type: string }).type,
  );

test("a step answer padded past the limit of objects and arrays is refused, and nothing stored", async () => {
  // Within the limit: read as ever (the padding is ignored).
  await h.engine.sendEvent({ ...where, event: { type: "pad", count: 1000 }, authContext: anyone });
  await assert.rejects(
    h.engine.sendEvent({
      ...where,
      event: { type: "pad", count: MAX_SANDBOX_JSON_CONTAINERS + 1 },
      authContext: anyone,
    }),
    { code: "machine-error", message: /more than 1000000 objects and arrays/ },
  );
  assert.deepEqual(await historyOf(), ["xstate.init", "pad"]);
  const next = await h.engine.sendEvent({ ...where, event: "ping", authContext: anyone });
  assert.equal(next.state, "idle");
  assert.deepEqual(await historyOf(), ["xstate.init", "pad", "ping"]);
});
