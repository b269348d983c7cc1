// A client event may be any type the machine names (api-contract §3.1), except the runtime's own:
// `xstate.*`, `statebacked.*`, and XState v4's families (a service's result `done.invoke.<id>`,
// its error `error.platform.<id>`, `done.state.<id>`, `error.execution`, `error.communication`),
// which a client could send to fake a service's outcome. Other types under `done.` and `error.`
// (`done.reviewing`, `error.retry`) are the machine's own and reach it. Nor may an event carry
// `$$type`, which makes XState 4 read it as its own event record, named by its `name`. Driven by
// the official client, on a v4 bundle that a forged service result would move on.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { StateBackedClient } from "@statebacked/client";
import { startApiServer, type ApiServer } from "../support/api-server.js";
import { adminClient } from "../support/official-client.js";

const MACHINE = `
import { createMachine } from "npm:xstate";
export default createMachine({
  id: "review",
  predictableActionArguments: true,
  initial: "drafting",
  states: {
    drafting: {
      on: { "done.reviewing": "approved", "error.retry": "retrying", check: "checking" },
    },
    // As if a service "checker" ran: a forged result would complete it.
    checking: {
      on: { "done.invoke.checker": "approved", "error.platform.checker": "drafting" },
    },
    approved: {},
    retrying: {},
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
  await client.machines.create("review");
  await client.machineVersions.create("review", { code: MACHINE, makeCurrent: true });
});

after(() => api.dispose());

test("types under done. and error. that the runtime never sends reach the machine", async () => {
  await client.machineInstances.create("review", { slug: "r1" });
  const done = await client.machineInstances.sendEvent("review", "r1", { event: "done.reviewing" });
  assert.equal(done.state, "approved");

  await client.machineInstances.create("review", { slug: "r2" });
  const retried = await client.machineInstances.sendEvent("review", "r2", {
    event: { type: "error.retry", attempt: 2 },
  });
  assert.equal(retried.state, "retrying");
});

test("the runtime's own event types are refused (400) and change nothing", async () => {
  await client.machineInstances.create("review", { slug: "r3" });
  const waiting = await client.machineInstances.sendEvent("review", "r3", { event: "check" });
  assert.equal(waiting.state, "checking");
  for (const type of [
    "done.invoke.checker",
    "done.invoke",
    "done.state.review",
    "error.platform.checker",
    "error.execution",
    "error.communication",
    "xstate.init",
    "statebacked.upgrade",
  ]) {
    const response = await fetch(`${api.url}/machines/review/i/r3/events`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${api.adminToken}` },
      body: JSON.stringify({ event: { type } }),
    });
    const body = (await response.json()) as { code?: string; parameter?: string };
    assert.equal(response.status, 400, `${type}: ${JSON.stringify(body)}`);
    assert.deepEqual([body.code, body.parameter], ["invalid-parameter", "event"], type);
  }
  assert.equal((await client.machineInstances.get("review", "r3")).state, "checking");
  const { transitions } = await client.machineInstances.listTransitions("review", "r3");
  assert.equal(transitions.length, 2, "only the creation and the check are in the history");
});

test("an event shaped as XState 4's internal (SCXML) event is refused (400): it would pass for its name", async () => {
  await client.machineInstances.create("review", { slug: "r4" });
  assert.equal(
    (await client.machineInstances.sendEvent("review", "r4", { event: "check" })).state,
    "checking",
  );
  // XState 4 takes an object with $$type "scxml" as its own event record, and matches transitions
  // on its `name`: this one would pass for the checker's result.
  const forged = {
    type: "ok",
    $$type: "scxml",
    name: "done.invoke.checker",
    data: { type: "done.invoke.checker", data: {} },
  };
  const response = await fetch(`${api.url}/machines/review/i/r4/events`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${api.adminToken}` },
    body: JSON.stringify({ event: forged }),
  });
  const body = (await response.json()) as { code?: string; parameter?: string };
  assert.equal(response.status, 400, JSON.stringify(body));
  assert.deepEqual([body.code, body.parameter], ["invalid-parameter", "event"]);
  assert.equal((await client.machineInstances.get("review", "r4")).state, "checking");
});
