// When the database does not answer, a request is refused 503 store-error, and what it tells the
// caller stops there: the driver's words name the database's address (a refused connection) or
// its role (a refused login), which the API hands to anyone, no token needed (looking up the key
// of a token comes before verifying it). The cause goes to the server's log, as /healthz's does.
import assert from "node:assert/strict";
import { test } from "node:test";
import { signToken } from "@backstate/token";
import { startServer } from "../../src/http/server.js";
import type { LogFields } from "../../src/engine/logger.js";
import { CuttingProxy } from "../support/cutting-proxy.js";
import { TestSchemas, testDatabaseUrl } from "../store/postgres-support.js";

const url = testDatabaseUrl("http: what a store error's answer tells (postgres)");
if (url !== undefined) {
  const schemas = new TestSchemas(url);

  test("a request the database cannot answer is told store-error, not the database's address", async (t) => {
    const target = new URL(url);
    const proxy = await CuttingProxy.start({
      host: target.hostname,
      port: Number(target.port || 5432),
    });
    const logged: LogFields[] = [];
    const record = (_: string, fields?: LogFields) => void logged.push(fields ?? {});
    const server = await startServer({
      databaseUrl: proxy.urlFor(url),
      postgres: { schema: schemas.fresh(), poolSize: 2, connectionTimeoutMs: 1_000 },
      logger: { debug() {}, info() {}, warn: record, error: record },
    });
    t.after(() => server.close());
    // The database goes away: open connections break, new ones are refused.
    await proxy.close();
    const { port } = new URL(proxy.urlFor(url));

    // Anyone can name a key: no secret is needed to make the server look it up.
    const token = await signToken(
      { stateBackedKeyId: "sbk_anyone", stateBackedSecretKey: "sbsec_anything" },
      { sub: "mallory" },
      { expires: { in: "1h" } },
    );
    const response = await fetch(`${server.url}/machines`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const body = (await response.json()) as Record<string, unknown>;
    assert.equal(response.status, 503);
    assert.equal(body.code, "store-error");
    assert.doesNotMatch(String(body.error), new RegExp(`ECONNREFUSED|127\\.0\\.0\\.1|${port}`));
    // The operator still learns why.
    assert.match(JSON.stringify(logged), /ECONNREFUSED/);
  });
}
