// Regression: after a crash, an instance whose service died with the server stayed in its
// invoking state until some event came; one that waited only for its service's answer (no timer,
// no client event) waited for ever. A restarted SQLite server knows those services are dead and
// now delivers their error events as it starts.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "node:test";

const WORKER = fileURLToPath(new URL("../support/lost-service-crash-worker.js", import.meta.url));

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
  "a service lost in a SIGKILL gets its error event when the server restarts, with no event sent",
  { timeout: 120_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "backstate-lost-crash-"));
    try {
      const first = run("hang", dir);
      const end = Date.now() + 60_000;
      while (!first.lines.includes("started") && Date.now() < end) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.ok(first.lines.includes("started"), "the service started");
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
