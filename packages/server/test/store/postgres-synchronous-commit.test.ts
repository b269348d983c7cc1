// A node on a PostgreSQL whose sessions commit with synchronous_commit=off acknowledges writes a
// crash of the database may lose: it says so in its log at start, and says nothing when commits
// are durable (the default).
import assert from "node:assert/strict";
import { test } from "node:test";
import { openBackstate } from "../../src/backstate.js";
import type { LogFields } from "../../src/engine/logger.js";
import { TestSchemas, testDatabaseUrl } from "./postgres-support.js";

const url = testDatabaseUrl("postgres: synchronous_commit at start");
if (url !== undefined) {
  const schemas = new TestSchemas(url);

  async function warningsAtStart(databaseUrl: string): Promise<string[]> {
    const warnings: string[] = [];
    const none = () => {};
    const backstate = await openBackstate({
      databaseUrl,
      postgres: { schema: schemas.fresh(), poolSize: 2 },
      logger: {
        debug: none,
        info: none,
        error: none,
        warn: (message: string, fields?: LogFields) =>
          void warnings.push(`${message} ${JSON.stringify(fields ?? {})}`),
      },
    });
    await backstate.close();
    return warnings.filter((warning) => warning.includes("synchronous_commit"));
  }

  test("a node whose sessions commit with synchronous_commit=off warns at start", async () => {
    // As a role's or database's setting would, for every session the node opens.
    const off = new URL(url);
    off.searchParams.set("options", "-c synchronous_commit=off");
    const warnings = await warningsAtStart(off.toString());
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.match(warnings[0]!, /may be lost/);
    assert.match(warnings[0]!, /"synchronousCommit":"off"/);
  });

  test("a node whose commits are durable says nothing of it", async () => {
    const on = new URL(url);
    on.searchParams.set("options", "-c synchronous_commit=on");
    assert.deepEqual(await warningsAtStart(on.toString()), []);
    assert.deepEqual(await warningsAtStart(url), []);
  });
}
