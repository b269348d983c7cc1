// examples/quickstart.mjs, which the README tells newcomers to run, against `backstate serve`.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { REPO_ROOT, serve, stop, tempDir } from "./support/cli.js";

function runExample(credentialsPath: string): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [join(REPO_ROOT, "examples", "quickstart.mjs")], {
    cwd: REPO_ROOT,
    env: { ...process.env, BACKSTATE_CREDENTIALS: credentialsPath },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, output })));
}

test(
  "examples/quickstart.mjs deploys toggle and toggles alice's instance; it can run again",
  { timeout: 60_000 },
  async (t) => {
    const server = await serve(tempDir(t));
    t.after(() => server.child.kill("SIGKILL"));

    const first = await runExample(server.credentialsPath);
    assert.equal(first.code, 0, first.output);
    assert.match(first.output, /^deployed toggle version ver_\S+$/m);
    assert.match(first.output, /^created key sbk_\S+$/m);
    assert.match(first.output, /^alice's toggle is off$/m);
    assert.match(first.output, /^after "toggle" it is on$/m);
    assert.match(first.output, /^read back: on$/m);

    const second = await runExample(server.credentialsPath);
    assert.equal(second.code, 0, second.output);
    assert.match(second.output, /^alice's toggle is on$/m);
    assert.match(second.output, /^after "toggle" it is off$/m);
    assert.match(second.output, /^read back: off$/m);

    assert.deepEqual(await stop(server), { code: 0, signal: null });
  },
);
