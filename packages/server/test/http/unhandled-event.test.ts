// behavior.md §8–9: an event with no enabled transition is answered 200 with the state unchanged,
// and is still recorded in the instance's history (State Backed's tic-tac-toe history shows such
// rows); its answer's ts never goes back. Driven by the official client.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { StateBackedClient } from "@statebacked/client";
import { startApiServer, type ApiServer } from "../support/api-server.js";
import { adminClient } from "../support/official-client.js";

const MACHINE = `
import { createMachine, assign } from "xstate";
export default createMachine({
  id: "gate",
  initial: "closed",
  context: { public: { opened: 0 } },
  states: {
    closed: { on: { open: { target: "open", actions: assign({ public: ({ context }) => ({ opened: context.public.opened + 1 }) }) } } },
    open: { tags: ["passable"], on: { close: "closed" } },
  },
});
export const allowRead = () => true;
export const allowWrite = () => true;
`;

let api: ApiServer;
let client: StateBackedClient;

before(async () => {
  api = await startApiServer();
  client = adminClient(api);
  await client.machines.create("gate");
  await client.machineVersions.create("gate", { code: MACHINE, makeCurrent: true });
});

after(() => api.dispose());

test("an event nothing handles: 200, the same state, a row in the history", async () => {
  const created = await client.machineInstances.create("gate", { slug: "g1" });
  const opened = await client.machineInstances.sendEvent("gate", "g1", { event: "open" });
  const ignored = await client.machineInstances.sendEvent("gate", "g1", {
    event: { type: "knock", times: 3 },
  });
  assert.deepEqual(
    [ignored.state, ignored.publicContext, ignored.tags, ignored.done],
    [opened.state, opened.publicContext, opened.tags, opened.done],
  );
  assert.ok(ignored.ts >= opened.ts && opened.ts >= created.ts, "ts never goes back");
  assert.deepEqual(await client.machineInstances.get("gate", "g1"), ignored);

  const { transitions } = await client.machineInstances.listTransitions("gate", "g1");
  assert.deepEqual(
    transitions.map((row) => [row.state, row.event]),
    [
      ["open", { type: "knock", times: 3 }],
      ["open", { type: "open" }],
      ["closed", transitions[2]!.event],
    ],
  );
});
