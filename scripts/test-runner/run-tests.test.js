// The test runner's own tests: a file that hangs is killed at its time limit, with every
// process it started, and the run fails naming it; the suite never picks up these fixtures.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { findTestFiles } from "./find-test-files.js";

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, "..", "..");
const runner = join(repoRoot, "scripts", "run-tests.js");

/** A scratch repository whose only package holds the given fixtures as compiled test files. */
function scratchRepo(t, fixtures) {
  const root = mkdtempSync(join(tmpdir(), "run-tests-"));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const dist = join(root, "packages", "demo", "dist");
  mkdirSync(dist, { recursive: true });
  for (const name of fixtures)
    copyFileSync(join(here, "fixtures", `${name}.js`), join(dist, `${name}.test.js`));
  return root;
}

function runRunner(cwd, env) {
  // Without this, the runner's `node --test` would see it runs inside a test and skip its files.
  const { NODE_TEST_CONTEXT: _, ...outerEnv } = process.env;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [runner], {
      cwd,
      env: { ...outerEnv, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, output }));
  });
}

/** Whether `pid` is a live process (a zombie, killed but not yet reaped, is not). */
function isRunning(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Whether `pid` ends within `boundMs`: a SIGKILL takes effect when the process is next scheduled. */
async function endsWithin(pid, boundMs) {
  const deadline = Date.now() + boundMs;
  while (isRunning(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}

// The time limit leaves the fixture's process time to start on a loaded machine; the test's own
// bound only matters if the runner fails to kill it: then this fails instead of hanging.
test(
  "a test file still running at the time limit is killed, with what it started, and fails the run by name",
  { timeout: 120_000 },
  async (t) => {
    const root = scratchRepo(t, ["never-ends", "passes"]);
    const pidFile = join(root, "pids");
    const { code, output } = await runRunner(root, {
      BACKSTATE_TEST_FILE_TIMEOUT_MS: "10000",
      NEVER_ENDS_PID_FILE: pidFile,
    });

    assert.equal(code, 1, output);
    assert.match(output, /never-ends: started/);
    assert.match(
      output,
      /packages\/demo\/dist\/never-ends\.test\.js timed out: still running after 10000 ms/,
    );
    assert.match(
      output,
      /1 of 2 test files failed:\n {2}packages\/demo\/dist\/never-ends\.test\.js: timed out\n/,
    );
    // The fixture's process and the one it started in a group of its own are both gone.
    const pids = readFileSync(pidFile, "utf8").split(" ").map(Number);
    assert.equal(pids.length, 2);
    for (const pid of pids) assert.ok(await endsWithin(pid, 10_000), `process ${pid} still runs`);
  },
);

test("files that end in time pass the run", async (t) => {
  const root = scratchRepo(t, ["passes"]);
  const { code, output } = await runRunner(root, { BACKSTATE_TEST_FILE_TIMEOUT_MS: "60000" });
  assert.equal(code, 0, output);
  assert.match(output, /^ok 1 - passes$/m);
  assert.match(output, /all 1 test files passed/);
});

test("the summary adds up every file's tests", async (t) => {
  const root = scratchRepo(t, ["passes", "passes-and-skips"]);
  const { code, output } = await runRunner(root, { BACKSTATE_TEST_FILE_TIMEOUT_MS: "60000" });
  assert.equal(code, 0, output);
  assert.match(output, /^all files: tests 3, pass 2, fail 0, cancelled 0, skipped 1, todo 0$/m);
});

test("a time limit that is not a positive number of ms is refused", async (t) => {
  const root = scratchRepo(t, ["passes"]);
  const { code, output } = await runRunner(root, { BACKSTATE_TEST_FILE_TIMEOUT_MS: "10m" });
  assert.equal(code, 1);
  assert.match(output, /BACKSTATE_TEST_FILE_TIMEOUT_MS must be a positive whole number of ms: 10m/);
});

test("the suite runs this file and none of its fixtures", () => {
  const files = findTestFiles(repoRoot);
  assert.ok(files.includes(join("scripts", "test-runner", "run-tests.test.js")));
  assert.deepEqual(
    files.filter((file) => file.includes("fixtures")),
    [],
  );
});
