// The data folder holds key and session secrets: created private, the database readable by the
// server's user only.
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { openBackstate } from "../../src/backstate.js";
import { DataDirInUseError } from "../../src/store/sqlite/data-dir-claim.js";

test("a new data folder is 0700 and its database 0600", async () => {
  const parent = mkdtempSync(join(tmpdir(), "backstate-mode-"));
  const dataDir = join(parent, "data");
  const node = await openBackstate({ dataDir, sandboxes: { size: 1 } });
  try {
    assert.equal(statSync(dataDir).mode & 0o777, 0o700);
    assert.equal(statSync(join(dataDir, "backstate.db")).mode & 0o777, 0o600);
  } finally {
    await node.close();
    rmSync(parent, { recursive: true, force: true });
  }
});

test("in a data folder open to others, the database's -wal and -shm files are private too", async () => {
  // A folder the operator made: created open to others, so it protects nothing.
  const dataDir = mkdtempSync(join(tmpdir(), "backstate-mode-"));
  chmodSync(dataDir, 0o755);
  const node = await openBackstate({ dataDir, sandboxes: { size: 1 } });
  try {
    await node.store.ensureSetting("a-secret", "s3cret");
    // While the server runs, the write-ahead log holds what was written (the secrets) too.
    const files = readdirSync(dataDir).filter((name) => name.startsWith("backstate.db"));
    assert.deepEqual(files.sort(), ["backstate.db", "backstate.db-shm", "backstate.db-wal"]);
    for (const name of files) {
      assert.equal(statSync(join(dataDir, name)).mode & 0o777, 0o600, name);
    }
  } finally {
    await node.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("every file of a claimed data folder is private, the claim's lock file too", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "backstate-mode-"));
  chmodSync(dataDir, 0o755);
  const node = await openBackstate({ dataDir, claimDataDir: true, sandboxes: { size: 1 } });
  try {
    await node.store.ensureSetting("a-secret", "s3cret");
    const files = readdirSync(dataDir);
    assert.ok(files.includes("backstate.lock"), files.join());
    for (const name of files) {
      assert.equal(statSync(join(dataDir, name)).mode & 0o777, 0o600, name);
    }
  } finally {
    await node.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("a claimed data folder refuses a second claimer until the first closes", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "backstate-claim-"));
  const first = await openBackstate({ dataDir, claimDataDir: true, sandboxes: { size: 1 } });
  try {
    await assert.rejects(
      openBackstate({ dataDir, claimDataDir: true, sandboxes: { size: 1 } }),
      (error: unknown) => error instanceof DataDirInUseError && error.code === "data-dir-in-use",
    );
    // The refused start changed nothing: the first node still serves.
    assert.deepEqual(await first.store.listMachines("org_none", { limit: 1 }), []);
  } finally {
    await first.close();
  }
  const second = await openBackstate({ dataDir, claimDataDir: true, sandboxes: { size: 1 } });
  await second.close();
  rmSync(dataDir, { recursive: true, force: true });
});

test("a start refused for a bad option leaves the data dir free for the next", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "backstate-claim-"));
  try {
    // Refused by the engine, after the store has claimed the data dir and opened the database.
    await assert.rejects(
      openBackstate({ dataDir, claimDataDir: true, maxSelfEvents: 0, sandboxes: { size: 1 } }),
      /maxSelfEvents must be a positive integer/,
    );
    const node = await openBackstate({ dataDir, claimDataDir: true, sandboxes: { size: 1 } });
    await node.close();
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
