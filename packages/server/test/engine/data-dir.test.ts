// The data folder holds key and session secrets: created private, the database readable by the
// server's user only.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { openBackstate } from "../../src/backstate.js";

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
