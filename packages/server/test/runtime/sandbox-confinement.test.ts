// What a sandbox escape would still be denied. No escape from the vm context is known, so this
// starts a process exactly as the pool does (same flags, same environment) and runs code in its
// main realm, as escaped code would, with `process` and every Node module at hand. The built-ins
// that code finds are frozen by the sandbox's own entry, which this code replaces: that freeze is
// tested in freeze-intrinsics.test.ts and, from machine code, in sandbox-hostile.test.ts.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { DEFAULT_CHILD_ENTRY, sandboxLaunch } from "../../src/runtime/sandbox-launch.js";
import { SandboxPool } from "../../src/runtime/sandbox-pool.js";
import {
  callExport,
  CONFINEMENT_PROBE,
  INTRINSICS_PROBE,
  memoryLogger,
  SERVER_DIR,
  target,
  TEST_ADAPTER,
  waitFor,
} from "./sandbox-helpers.js";

const dataDir = mkdtempSync(join(tmpdir(), "backstate-data-"));
const secretFile = join(dataDir, "secret.json");
writeFileSync(secretFile, '{"secret":"s3cret"}');
after(() => rmSync(dataDir, { recursive: true, force: true }));

const ESCAPED = `
import fs from "node:fs";
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const [secretFile, dataDir, ...readable] = JSON.parse(process.argv[1]);
const outcomes = {};
function attempt(name, action) {
  try {
    const value = action();
    outcomes[name] = "allowed";
  } catch (error) {
    outcomes[name] = error.code ?? error.name;
  }
}
for (const path of [secretFile, ...readable]) attempt("read " + path, () => fs.readFileSync(path));
attempt("list the data dir", () => fs.readdirSync(dataDir));
attempt("stat the secret", () => fs.statSync(secretFile));
attempt("require json", () => require(secretFile));
attempt("write", () => fs.writeFileSync(dataDir + "/planted", "x"));
attempt("spawn", () => require("node:child_process").spawnSync("true"));
attempt("worker", () => new (require("node:worker_threads").Worker)("0", { eval: true }));
attempt("addon", () => process.dlopen({ exports: {} }, "/nonexistent.node"));
attempt("process.binding", () => process.binding("fs"));
attempt("inspector", () => require("node:inspector").open(0));
attempt("eval", () => eval("1"));
attempt("new Function", () => new Function("return 1"));
outcomes.env = process.env;
console.log(JSON.stringify(outcomes));
`;

test("an escaped sandbox reads nothing but its own code, spawns nothing, sees no env", () => {
  process.env.BACKSTATE_TEST_SECRET = "do-not-leak";
  const launch = sandboxLaunch({
    entry: DEFAULT_CHILD_ENTRY,
    memoryLimitMb: 64,
    maxResidentMb: 256,
  });
  // The escaped code replaces the entry script, under the very same flags and environment.
  const flags = launch.args.slice(0, -1);
  const readable = [
    TEST_ADAPTER,
    join(SERVER_DIR, "package.json"),
    join(SERVER_DIR, "dist/vendor/xstate5.js"),
    join(SERVER_DIR, "dist/src/runtime/sandbox-pool.js"),
    join(SERVER_DIR, "dist/src/runtime/sandbox/child.js"),
    "/etc/passwd",
  ];
  const result = spawnSync(
    launch.command,
    [
      ...flags,
      "--input-type=module",
      "-e",
      ESCAPED,
      JSON.stringify([secretFile, dataDir, ...readable]),
    ],
    { env: launch.env, encoding: "utf8" },
  );
  assert.equal(result.status, 0, result.stderr);
  const outcomes = JSON.parse(result.stdout) as Record<string, unknown>;
  const { env, ...attempts } = outcomes;
  // The shell that sets the sandbox's data limit may be bash, which always exports its SHLVL.
  delete (env as Record<string, unknown>).SHLVL;
  assert.deepEqual(env, { NODE_ENV: "production" });
  for (const [name, outcome] of Object.entries(attempts)) {
    assert.notEqual(outcome, "allowed", name);
  }
  assert.equal(attempts["read " + secretFile], "ERR_ACCESS_DENIED");
  assert.equal(attempts["spawn"], "ERR_ACCESS_DENIED");
  assert.equal(attempts["worker"], "ERR_ACCESS_DENIED");
  assert.equal(attempts["eval"], "EvalError");
});

test("the sandbox may read its own directory, and only that", () => {
  const launch = sandboxLaunch({
    entry: DEFAULT_CHILD_ENTRY,
    memoryLimitMb: 64,
    maxResidentMb: 256,
  });
  const reads = launch.args.filter((arg) => arg.startsWith("--allow-fs-read="));
  assert.deepEqual(reads, [`--allow-fs-read=${launch.readableDir}`]);
  assert.ok(launch.readableDir.endsWith(join("dist", "sandbox")));
  for (const flag of [
    "--allow-fs-write",
    "--allow-child-process",
    "--allow-worker",
    "--allow-addons",
  ]) {
    assert.ok(!launch.args.some((arg) => arg.startsWith(flag)), flag);
  }
  assert.ok(launch.args.includes("--disallow-code-generation-from-strings"));
});

test("where there is no shell to set the data limit, the sandbox starts without it, confined alike", () => {
  const options = { entry: DEFAULT_CHILD_ENTRY, memoryLimitMb: 64, maxResidentMb: 256 };
  const limited = sandboxLaunch(options);
  const unlimited = sandboxLaunch({ ...options, shell: "/no/such/shell" });
  assert.equal(unlimited.command, process.execPath);
  assert.equal(unlimited.dataLimitMb, undefined);
  // The same node flags and entry, only not behind the shell that sets the limit.
  assert.deepEqual(limited.args.slice(-unlimited.args.length), unlimited.args);
  if (process.platform === "linux") assert.equal(limited.dataLimitMb, 256);
  const result = spawnSync(
    unlimited.command,
    [...unlimited.args.slice(0, -1), "-e", "console.log('started')"],
    { env: unlimited.env, encoding: "utf8" },
  );
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stdout.trim(), "started");
});

/**
 * Runs the real entry under the pool with a probe beside it in the process's main realm (a
 * fixture that imports the entry, then logs `<tag> {…}` after each message), calls one export,
 * and answers the probe's last report: what escaped code would find once the sandbox started.
 */
async function probeReport(probe: string, tag: string): Promise<Record<string, string>> {
  const probeDir = mkdtempSync(join(tmpdir(), "backstate-probe-"));
  copyFileSync(DEFAULT_CHILD_ENTRY, join(probeDir, "child.mjs"));
  copyFileSync(probe, join(probeDir, "entry.mjs"));
  const logger = memoryLogger();
  const pool = new SandboxPool({
    adapterPath: TEST_ADAPTER,
    childEntry: join(probeDir, "entry.mjs"),
    logger,
  });
  try {
    const at = target("org_a", "export default {}; export const ok = () => 'ok';");
    assert.equal(await callExport(pool, at, "ok"), "ok");
    const pattern = new RegExp(`${tag} (\\{.*\\})`, "g");
    const reports = () => logger.entries.flatMap(({ message }) => [...message.matchAll(pattern)]);
    await waitFor(() => reports().length > 0, "the probe's report");
    return JSON.parse(reports().at(-1)![1]!) as Record<string, string>;
  } finally {
    await pool.close();
    rmSync(probeDir, { recursive: true, force: true });
  }
}

// confineProcess is the second line of defence, so nothing else fails when the sandbox stops
// calling it: the probe reports, after each message, what escaped code would find of `process`.
test("a started sandbox process has no process.kill, _debugProcess, getBuiltinModule or bindings", async () => {
  const outcomes = await probeReport(CONFINEMENT_PROBE, "confinement");
  assert.equal(Object.keys(outcomes).length, 8);
  for (const [name, outcome] of Object.entries(outcomes)) {
    assert.match(outcome, /is not available in the sandbox/, name);
  }
});

// The sandbox freezes its built-ins itself (freeze-intrinsics.ts), then hardens the host objects
// it hands out (harden.ts), which must leave the members V8's fast paths watch as they were.
test("a started sandbox process's built-ins refuse patches and keep their fast paths", async () => {
  const outcomes = await probeReport(INTRINSICS_PROBE, "intrinsics");
  assert.equal(Object.keys(outcomes).length, 11);
  for (const [name, outcome] of Object.entries(outcomes)) {
    if (name.includes(" ")) assert.equal(outcome, "TypeError", name);
    else assert.equal(outcome, "read-only data", name);
  }
});
