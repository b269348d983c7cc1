// GET /healthz, for load balancers: 200 while the node serves and its database answers, to anyone
// (no token); 503 shutting-down once the node has begun to close. What it remembers and shares
// between checks is tested with HealthCheck itself (src/http/health-check.test.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { startApiServer } from "../support/api-server.js";

test("a serving node answers 200 to anyone, without a token", async (t) => {
  const api = await startApiServer();
  t.after(() => api.dispose());
  const response = await fetch(`${api.url}/healthz`);
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), { status: "ok" });
  // Only GET: the same path with another method is no endpoint.
  const posted = await fetch(`${api.url}/healthz`, { method: "POST" });
  assert.equal(posted.status, 404);
});

test("a node that has begun to close says it is shutting down", async (t) => {
  const api = await startApiServer();
  t.after(() => api.dispose());
  await api.server.services.health.check();
  const closing = api.server.close();
  await assert.rejects(api.server.services.health.check(), { code: "shutting-down" });
  await closing;
});
