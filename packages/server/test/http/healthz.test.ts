// GET /healthz, for load balancers: 200 while the node serves and its database answers, to anyone
// (no token); 503 shutting-down once the node drains or closes; 503 store-error when the database
// does not answer, or the node has long not heard the other nodes' change notices, with nothing
// of the cause (an address, a role) in the answer. What the check remembers, shares and waits for
// is tested with HealthCheck itself (src/http/health-check.test.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { BackstateError } from "../../src/errors.js";
import { startApiServer } from "../support/api-server.js";

async function healthz(url: string) {
  const response = await fetch(`${url}/healthz`);
  return {
    status: response.status,
    cacheControl: response.headers.get("cache-control"),
    body: (await response.json()) as Record<string, unknown>,
  };
}

test("a serving node answers 200 to anyone, without a token, never to be cached", async (t) => {
  const api = await startApiServer();
  t.after(() => api.dispose());
  const answer = await healthz(api.url);
  assert.equal(answer.status, 200);
  assert.deepEqual(answer.body, { status: "ok" });
  assert.equal(answer.cacheControl, "no-store");
  // Only GET: the same path with another method is no endpoint.
  const posted = await fetch(`${api.url}/healthz`, { method: "POST" });
  assert.equal(posted.status, 404);
});

test("a node whose database does not answer says only that", async (t) => {
  const api = await startApiServer();
  t.after(() => api.dispose());
  const { store } = api.server.backstate;
  // As the PostgreSQL adapter reports a refused connection.
  store.ping = () =>
    Promise.reject(
      new BackstateError("store-error", "storage failed: connect ECONNREFUSED 10.1.2.3:5432"),
    );
  const answer = await healthz(api.url);
  assert.equal(answer.status, 503);
  assert.deepEqual(answer.body, { error: "the database does not answer", code: "store-error" });
});

test("a node that has not heard other nodes' changes for long says so", async (t) => {
  const api = await startApiServer();
  t.after(() => api.dispose());
  const { updates } = api.server.backstate;
  // As the PostgreSQL update bus reports a listening connection lost a minute ago.
  const lostAt = performance.now() - 60_000;
  updates.notListeningSince = () => lostAt;
  const answer = await healthz(api.url);
  assert.equal(answer.status, 503);
  assert.deepEqual(answer.body, {
    error: "this node does not hear the database's change notices",
    code: "store-error",
  });
  updates.notListeningSince = () => undefined;
  assert.equal((await healthz(api.url)).status, 200);
});

test("a draining node answers 503 shutting-down, as does one that has begun to close", async (t) => {
  const api = await startApiServer();
  t.after(() => api.dispose());
  assert.equal((await healthz(api.url)).status, 200);
  api.server.drain();
  const answer = await healthz(api.url);
  assert.equal(answer.status, 503);
  assert.deepEqual(answer.body, { error: "this node is shutting down", code: "shutting-down" });
  // Everything else is still served while it drains.
  assert.equal((await api.admin("GET", "/orgs")).status, 200);

  const closing = await startApiServer();
  t.after(() => closing.dispose());
  const closed = closing.server.close();
  await assert.rejects(closing.server.services.health.check(), { code: "shutting-down" });
  await closed;
});
