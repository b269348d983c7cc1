// Regression: a claim refused inside the process that holds it must leave that claim standing.
// The refused claimer opened and closed the lock file with a plain descriptor, and closing any
// descriptor of a file drops every POSIX lock the process holds on it: the holder's claim with it,
// so another process could then claim the data dir of a server still running.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { claimDataDir, DataDirInUseError } from "../../src/store/sqlite/data-dir-claim.js";

/** What another process gets when it tries to claim `dataDir`: "claimed" or the error's code. */
function claimFromAnotherProcess(dataDir: string): string {
  const module = new URL("../../src/store/sqlite/data-dir-claim.js", import.meta.url).href;
  const script = `import { claimDataDir } from ${JSON.stringify(module)};
    try { claimDataDir(${JSON.stringify(dataDir)}); console.log("claimed"); }
    catch (error) { console.log(error.code); }`;
  return execFileSync(process.execPath, ["--input-type=module", "-e", script]).toString().trim();
}

test("a claim refused in the claiming process leaves the claim held against other processes", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "backstate-claim-"));
  const claim = claimDataDir(dataDir);
  try {
    assert.equal(claimFromAnotherProcess(dataDir), "data-dir-in-use");
    assert.throws(() => claimDataDir(dataDir), DataDirInUseError);
    assert.equal(claimFromAnotherProcess(dataDir), "data-dir-in-use");
  } finally {
    claim.release();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
