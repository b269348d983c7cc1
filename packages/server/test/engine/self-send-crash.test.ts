// Regression: an event the machine sends itself was lost for good when the server died after the
// commit of the step that sent it and before its own step was committed (it lived only in memory).
// XState 4's `send` and XState 5's `sendTo` the machine itself take the same path.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { printed, runWorker, supportWorker } from "../support/worker-process.js";

const WORKER = supportWorker("self-send-crash-worker");
const run = (mode: string, dir: string) => runWorker(WORKER, [mode, dir]);

test(
  "a self-sent event whose step a SIGKILL cut short is delivered after the restart",
  { timeout: 120_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "backstate-self-crash-"));
    try {
      const first = run("ping", dir);
      assert.ok(await printed(first, "committed"), "the ping was committed");
      // The pong's step spins for 3 s in the sandbox: the kill lands between the two commits.
      first.child.kill("SIGKILL");
      await first.exited;

      const second = run("settle", dir);
      assert.equal(await second.exited, 0, "settle");
      const line = second.lines.find((l) => l.startsWith("context "));
      assert.deepEqual(JSON.parse(line?.slice(8) ?? "{}"), { pings: 1, pongs: 1 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
