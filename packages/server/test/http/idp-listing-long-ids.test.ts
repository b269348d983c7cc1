// Regression: every cursor the server gives out must be one it takes back. Identity providers are
// paged by their (aud, iss), each up to 1,024 bytes, and the cursor is that position as base64url
// JSON: with long ones it came out longer than the 1,024 characters a cursor query may have, so
// the next page of the listing was a 400 and the providers after it could not be listed at all.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { PAGE_SIZE } from "../../src/http/cursor.js";
import { startApiServer, type ApiServer } from "../support/api-server.js";

let api: ApiServer;

before(async () => {
  api = await startApiServer();
});
after(() => api.dispose());

test("identity providers with long issuers are listed page after page", async () => {
  const padding = "x".repeat(900);
  const created: string[] = [];
  for (let i = 0; i <= PAGE_SIZE; i++) {
    const iss = `https://idp.example/${padding}/${String(i).padStart(3, "0")}`;
    const reply = await api.admin("POST", "/idps", {
      iss,
      algs: ["HS256"],
      key: Buffer.alloc(32, 7).toString("base64url"),
      mapping: { "sub.$": "$.sub" },
    });
    assert.equal(reply.status, 204);
    created.push(iss);
  }
  const listed: unknown[] = [];
  let cursor: string | undefined;
  do {
    const query = cursor === undefined ? "" : `?cursor=${cursor}`;
    const page = await api.admin("GET", `/idps${query}`);
    assert.equal(page.status, 200, JSON.stringify(page.body));
    listed.push(...(page.body.idps as Array<{ iss?: string }>).map((idp) => idp.iss));
    cursor = page.body.cursor as string | undefined;
  } while (cursor !== undefined);
  for (const iss of created) assert.ok(listed.includes(iss), `${iss.slice(-3)} listed`);
});
