// behavior.md §8: "reads never block on processing and always return a self-consistent snapshot".
// An event whose step starts a service that never ends keeps its own request waiting for the
// instance to settle (here up to a minute); meanwhile the official client's get, the admin read
// and a realtime subscription answer at once, with the committed state.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { StateBackedClient } from "@statebacked/client";
import { startApiServer, type ApiServer } from "../support/api-server.js";
import { adminClient } from "../support/official-client.js";

const MACHINE = `
import { createMachine, fromCallback } from "xstate";
export default createMachine({
  id: "worker",
  initial: "idle",
  context: { public: { step: 1 } },
  states: {
    idle: { on: { work: "working" } },
    working: { tags: ["busy"], invoke: { src: fromCallback(() => () => {}) } },
  },
});
export const allowRead = () => true;
export const allowWrite = () => true;
`;

let api: ApiServer;
let client: StateBackedClient;

before(async () => {
  // Long enough that the waiting request cannot end by timing out while the test reads.
  api = await startApiServer({ settleTimeoutMs: 60_000 });
  client = adminClient(api);
  await client.machines.create("worker");
  await client.machineVersions.create("worker", { code: MACHINE, makeCurrent: true });
});

after(() => api.dispose());

test("while an event waits for its service, reads answer with the committed state", async () => {
  await client.machineInstances.create("worker", { slug: "w1" });
  let answered = false;
  const waiting = client.machineInstances.sendEvent("worker", "w1", { event: "work" }).then(
    () => (answered = true),
    () => (answered = true),
  );

  // The event's step is committed before its request waits: reads see it while it waits.
  let read = await client.machineInstances.get("worker", "w1");
  while (read.state !== "working") {
    assert.equal(answered, false, "the send waits for its service");
    read = await client.machineInstances.get("worker", "w1");
  }
  assert.deepEqual([read.tags, read.publicContext], [["busy"], { step: 1 }]);
  const admin = await client.machineInstances.admin.get("worker", "w1");
  assert.equal(admin.state, "working");

  const seen = await new Promise<unknown>((resolve, reject) => {
    const unsubscribe = client.machineInstances.subscribe(
      "worker",
      "w1",
      (update) => {
        unsubscribe();
        resolve(update.state);
      },
      (error) => {
        unsubscribe();
        reject(error);
      },
    );
  });
  assert.equal(seen, "working");
  assert.equal(answered, false, "all of it while the send still waited");

  // Deleting the instance stops its service, which ends the wait.
  await client.machineInstances.dangerously.delete("worker", "w1", {
    dangerDataWillBeDeletedForever: true,
  });
  await waiting;
});
