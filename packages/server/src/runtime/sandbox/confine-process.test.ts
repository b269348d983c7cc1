import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const MODULE = fileURLToPath(new URL("./confine-process.js", import.meta.url));

// In a process of its own: confining is for the life of the process.
const PROBE = `
const { confineProcess } = await import(${JSON.stringify(MODULE)});
confineProcess();
const tries = {
  kill: () => process.kill(process.ppid, 0),
  debugParent: () => process._debugProcess(process.ppid),
  builtin: () => process.getBuiltinModule("net"),
  binding: () => process.binding("tcp_wrap"),
  addon: () => process.dlopen({}, "/nonexistent.node"),
  putBack: () => { process.kill = () => "put back"; return process.kill(1); },
};
const outcomes = {};
for (const [name, attempt] of Object.entries(tries)) {
  try { attempt(); outcomes[name] = "allowed"; } catch (error) { outcomes[name] = error.message; }
}
console.log(JSON.stringify(outcomes));
process.exit(7);
`;

test("a confined process can signal no process, load no module or binding, and still exit", () => {
  const run = spawnSync(process.execPath, ["--input-type=module", "-e", PROBE], {
    encoding: "utf8",
  });
  assert.equal(run.status, 7, run.stderr);
  const outcomes = JSON.parse(run.stdout) as Record<string, string>;
  for (const [name, outcome] of Object.entries(outcomes)) {
    assert.match(outcome, /is not available in the sandbox|read only|Cannot assign/, name);
  }
  assert.deepEqual(Object.keys(outcomes).length, 6);
});
