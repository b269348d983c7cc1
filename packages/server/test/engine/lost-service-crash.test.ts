// Regression: after a crash, an instance whose service died with the server stayed in its
// invoking state until some event came; one that waited only for its service's answer (no timer,
// no client event) waited for ever. A restarted SQLite server knows those services are dead and
// now delivers their error events as it starts.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { printed, runWorker, supportWorker } from "../support/worker-process.js";

const WORKER = supportWorker("lost-service-crash-worker");
const run = (mode: string, dir: string) => runWorker(WORKER, [mode, dir]);

test(
  "a service lost in a SIGKILL gets its error event when the server restarts, with no event sent",
  { timeout: 120_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "backstate-lost-crash-"));
    try {
      const first = run("hang", dir);
      assert.ok(await printed(first, "started"), "the service started");
      first.child.kill("SIGKILL");
      await first.exited;

      const second = run("restart", dir);
      assert.equal(await second.exited, 0, "restart");
      const line = second.lines.find((l) => l.startsWith("state "));
      assert.equal(JSON.parse(line?.slice(6) ?? "null"), "failed");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
