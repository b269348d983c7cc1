// behavior.md §8: "concurrent getOrCreate from 10 clients yields exactly one instance and all 10
// receive a valid State". Ten official clients race getOrCreate on one name (the client's GET →
// 404 → POST → on 409 GET again), for a machine whose creation waits on an invoked promise, so
// the losers arrive while the winner's instance is still settling. On PostgreSQL half of them go
// through a second node on the same schema.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { StateBackedClient } from "@statebacked/client";
import { startAnotherNode, startApiServer, type ApiServer } from "../support/api-server.js";
import { adminClient } from "../support/official-client.js";

const CLIENTS = 10;
const ROUNDS = 3;

// Creation invokes a promise; its answer records who created the instance.
const MACHINE = `
import { createMachine, assign, fromPromise } from "xstate";
export default createMachine({
  id: "lobby",
  initial: "opening",
  context: { public: { by: null, ready: false } },
  states: {
    opening: {
      invoke: {
        src: fromPromise(() => new Promise((resolve) => setTimeout(() => resolve(true), 20))),
        onDone: { target: "open", actions: assign({ public: ({ context }) => ({ ...context.public, ready: true }) }) },
      },
    },
    open: {},
  },
});
export const allowRead = () => true;
export const allowWrite = () => true;
`;

let api: ApiServer;
let other: ApiServer;

before(async () => {
  api = await startApiServer();
  const onPostgres = api.store.options.databaseUrl !== undefined;
  other = onPostgres ? await startAnotherNode(api) : api;
  const admin = adminClient(api);
  await admin.machines.create("lobby");
  await admin.machineVersions.create("lobby", { code: MACHINE, makeCurrent: true });
});

after(async () => {
  if (other !== api) await other.dispose();
  await api.dispose();
});

test("ten clients racing getOrCreate: one instance, and each gets a valid State", async () => {
  const key = await api.createKey(["state.read", "instances.write", "instances.read"]);
  const clients = Array.from({ length: CLIENTS }, (_, i) => {
    const node = i % 2 === 0 ? api : other;
    return new StateBackedClient(() => api.tokenFor(key, { sub: `client-${i}` }), {
      apiHost: node.url,
    });
  });
  for (let round = 0; round < ROUNDS; round++) {
    const name = `room-${round}`;
    const states = await Promise.all(
      clients.map((client, i) =>
        client.machineInstances.getOrCreate("lobby", name, {
          context: { public: { by: `client-${i}`, ready: false } },
        }),
      ),
    );
    for (const state of states) {
      assert.ok(state.state === "opening" || state.state === "open", JSON.stringify(state));
      assert.equal(typeof state.ts, "number");
      assert.equal(typeof state.done, "boolean");
      assert.ok(Array.isArray(state.tags));
    }
    // One creator: every answer names the same one, one of the ten.
    const creators = new Set(states.map((state) => (state.publicContext as { by: string }).by));
    assert.equal(creators.size, 1, `one creator, not ${[...creators].join(", ")}`);
    assert.match([...creators][0]!, /^client-\d$/);

    const listed = await api.admin("GET", "/machines/lobby/i");
    assert.equal(
      (listed.body.instances as Array<{ slug: string }>).filter((i) => i.slug === name).length,
      1,
    );
    // One creation in its history, whatever the losers did.
    const history = await api.admin("GET", `/machines/lobby/i/${name}/events`);
    const inits = (history.body.transitions as Array<{ event: { type: string } }>).filter(
      (row) => row.event.type === "xstate.init",
    );
    assert.equal(inits.length, 1);
  }
});
