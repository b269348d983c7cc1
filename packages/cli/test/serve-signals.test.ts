// A signal that comes while `backstate serve` sets up its first start (the bootstrap admin, the
// credentials file) stops the server once that setup is done, not in the middle of it: closing
// the store under the setup's feet failed the start (exit 1) and left the admin half created.
// Run in this process, so that the signal comes at the exact step each test names.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import type { Logger } from "@backstate/server";
import { serve, type ServeOptions } from "../src/commands/serve.js";
import { freshSchema } from "./support/postgres-schema.js";

const TIMEOUT = { timeout: 60_000 };
const PG_URL = process.env.BACKSTATE_TEST_PG_URL;

/** A logger that notes each message, and sends this process SIGINT on `message` (once). */
function signalOn(message: string | undefined, seen: string[]): Logger {
  let sent = false;
  const log = (entry: string) => {
    seen.push(entry);
    if (entry === message && !sent) {
      sent = true;
      process.emit("SIGINT", "SIGINT");
    }
  };
  return { debug: log, info: log, warn: log, error: log };
}

/** SIGINT as soon as serve() listens for signals: once the server has started, before its setup. */
function signalWhenHandled(t: TestContext): void {
  let watching = true;
  t.after(() => (watching = false));
  const watch = () => {
    if (!watching) return;
    if (process.listenerCount("SIGINT") === 0) return void setImmediate(watch);
    watching = false;
    process.emit("SIGINT", "SIGINT");
  };
  setImmediate(watch);
}

function tempDataDir(t: TestContext): string {
  const dataDir = mkdtempSync(join(tmpdir(), "backstate-serve-signal-"));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  return dataDir;
}

function options(dataDir: string, databaseUrl?: string): ServeOptions {
  return { port: 0, host: "127.0.0.1", dataDir, ...(databaseUrl ? { databaseUrl } : {}) };
}

function adminOrg(dataDir: string): string {
  const path = join(dataDir, "credentials.json");
  assert.ok(existsSync(path), "the setup was finished: credentials.json is there");
  return (JSON.parse(readFileSync(path, "utf8")) as { orgId: string }).orgId;
}

test(
  "SIGINT during the first start's setup stops the server once the setup is done",
  TIMEOUT,
  async (t) => {
    const dataDir = tempDataDir(t);
    const first: string[] = [];
    // Logged once the admin is created, before its session is minted and credentials written.
    await serve(options(dataDir), signalOn("created the first admin and org", first));
    assert.ok(first.includes("stopped"), first.join(", "));
    const orgId = adminOrg(dataDir);

    // The next start finds the data dir as a finished first start left it.
    const second: string[] = [];
    await serve(options(dataDir), signalOn("listening", second));
    assert.ok(!second.includes("created the first admin and org"), second.join(", "));
    assert.equal(adminOrg(dataDir), orgId);
  },
);

for (const store of ["sqlite", "postgres"] as const) {
  test(
    `SIGINT right as serve starts handling signals, before the admin exists (${store})`,
    {
      ...TIMEOUT,
      skip:
        store === "postgres" && !PG_URL && !process.env.CI
          ? "BACKSTATE_TEST_PG_URL is not set"
          : false,
    },
    async (t) => {
      assert.ok(
        store === "sqlite" || PG_URL,
        "CI must run this on PostgreSQL: set BACKSTATE_TEST_PG_URL",
      );
      const dataDir = tempDataDir(t);
      const schema = store === "postgres" ? await freshSchema(PG_URL!) : undefined;
      // serve() has returned, its server closed, before the test ends: the schema is free then.
      if (schema) t.after(() => schema.drop());
      const databaseUrl = schema?.url;
      signalWhenHandled(t);
      const seen: string[] = [];
      await serve(options(dataDir, databaseUrl), signalOn(undefined, seen));
      assert.ok(seen.includes("created the first admin and org"), seen.join(", "));
      assert.ok(seen.includes("stopped"), seen.join(", "));
      adminOrg(dataDir);
    },
  );
}
