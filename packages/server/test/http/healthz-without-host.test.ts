// The health check the README names first, HAProxy's `option httpchk GET /healthz`, sends
// `GET /healthz HTTP/1.0` and no header at all: HTTP/1.0 asks no Host of a client (RFC 9112 §3.2
// asks it of HTTP/1.1 requests only). The API refused every request without a Host, so such a
// check saw 400 invalid-parameter from every healthy node and took them all out of service.
import assert from "node:assert/strict";
import { test } from "node:test";
import { startApiServer } from "../support/api-server.js";
import { sendBytes } from "./raw-http.js";

test("an HTTP/1.0 health check without a Host header sees a healthy node", async (t) => {
  const api = await startApiServer();
  t.after(() => api.dispose());
  const answer = await sendBytes(api.url, Buffer.from("GET /healthz HTTP/1.0\r\n\r\n", "latin1"));
  assert.equal(answer.status, 200, answer.text);
  assert.deepEqual(JSON.parse(answer.text), { status: "ok" });
  // HTTP/1.1 still names its host.
  const eleven = await sendBytes(
    api.url,
    Buffer.from("GET /healthz HTTP/1.1\r\nconnection: close\r\n\r\n", "latin1"),
  );
  assert.equal(eleven.status, 400);
});
