// Regression: an event the machine sends itself was lost for good when the server died after the
// commit of the step that sent it and before its own step was committed (it lived only in memory).
// XState 4's `send` and XState 5's `sendTo` the machine itself take the same path.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "node:test";

const WORKER = fileURLToPath(new URL("../support/self-send-crash-worker.js", import.meta.url));

function run(mode: string, dir: string) {
  const child = spawn(process.execPath, [WORKER, mode, dir], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines: string[] = [];
  let buffer = "";
  child.stdout.on("data", (chunk: Buffer) => {
    buffer += chunk.toString();
    const parts = buffer.split("\n");
    buffer = parts.pop() ?? "";
    lines.push(...parts);
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, lines, exited };
}

test(
  "a self-sent event whose step a SIGKILL cut short is delivered after the restart",
  { timeout: 120_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "backstate-self-crash-"));
    try {
      const first = run("ping", dir);
      const end = Date.now() + 60_000;
      while (!first.lines.includes("committed") && Date.now() < end) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.ok(first.lines.includes("committed"), "the ping was committed");
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
