// What a sandbox escape would still be denied. No escape from the vm context is known, so this
// starts a process exactly as the pool does (same flags, same environment) and runs code in its
// main realm, as escaped code would, with `process` and every Node module at hand.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { DEFAULT_CHILD_ENTRY, sandboxLaunch } from "../../src/runtime/sandbox-launch.js";
import { SERVER_DIR, TEST_ADAPTER } from "./sandbox-helpers.js";

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
attempt("patch Object.prototype", () => { "use strict"; Object.prototype.polluted = 1; });
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
