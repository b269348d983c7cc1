import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const MODULE = fileURLToPath(new URL("./freeze-intrinsics.js", import.meta.url));

/**
 * Walks from the globals by own members and prototypes, as code holding them could, and answers
 * the path of every object found frozen (each by the first path it is met on; only frozen ones are
 * walked on). A member Node or freeze-intrinsics made an accessor to allow overrides is followed
 * to its value (the getter's own `value`), so both name an object by the same path. Getters that
 * are not such are not called.
 */
const FROZEN_PATHS = `
function frozenPaths() {
  const seen = new Set();
  const paths = [];
  const queue = [];
  const reach = (value, path) => {
    if ((typeof value !== "object" && typeof value !== "function") || value === null) return;
    if (seen.has(value) || !Object.isFrozen(value)) return;
    seen.add(value);
    paths.push(path);
    if (path.split("/").length < 7) queue.push([value, path]);
  };
  for (const key of Reflect.ownKeys(globalThis)) {
    const descriptor = Reflect.getOwnPropertyDescriptor(globalThis, key);
    if ("value" in descriptor) reach(descriptor.value, String(key));
  }
  for (let at = 0; at < queue.length; at++) {
    const [value, path] = queue[at];
    reach(Reflect.getPrototypeOf(value), path + "/<proto>");
    for (const key of Reflect.ownKeys(value)) {
      const descriptor = Reflect.getOwnPropertyDescriptor(value, key);
      const name = path + "/" + String(key);
      if ("value" in descriptor) reach(descriptor.value, name);
      else if (descriptor.get && Object.hasOwn(descriptor.get, "value")) reach(descriptor.get.value, name);
      else {
        reach(descriptor.get, name + "<get>");
        reach(descriptor.set, name + "<set>");
      }
    }
  }
  return paths;
}
`;

/** Follows a path of frozenPaths in this process: the object there, or undefined. */
const RESOLVE = `
function resolve(path) {
  let value = globalThis;
  for (const step of path.split("/")) {
    if ((typeof value !== "object" && typeof value !== "function") || value === null) return undefined;
    if (step === "<proto>") { value = Reflect.getPrototypeOf(value); continue; }
    const accessor = step.match(/^(.*)<(get|set)>$/);
    const key = ownKeyNamed(value, accessor ? accessor[1] : step);
    if (key === undefined) return undefined;
    const descriptor = Reflect.getOwnPropertyDescriptor(value, key);
    if (accessor) value = descriptor[accessor[2]];
    else if ("value" in descriptor) value = descriptor.value;
    else value = Object.hasOwn(descriptor.get, "value") ? descriptor.get.value : undefined;
  }
  return value;
}
function ownKeyNamed(value, name) {
  return Reflect.ownKeys(value).find((key) => String(key) === name);
}
`;

function run(flags: string[], source: string): unknown {
  const result = spawnSync(process.execPath, [...flags, "--input-type=module", "-e", source], {
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(result.stdout);
}

function frozenFor(flags: string[], freeze: string): string[] {
  return run(
    flags,
    `${FROZEN_PATHS}\n${freeze}\nconsole.log(JSON.stringify(frozenPaths()));`,
  ) as string[];
}

const FREEZE = `const { freezeIntrinsics } = await import(${JSON.stringify(MODULE)});\nfreezeIntrinsics();`;

test("freezes every object Node's --frozen-intrinsics freezes", () => {
  const byNode = frozenFor(["--frozen-intrinsics", "--disable-warning=ExperimentalWarning"], "");
  // Array.prototype, Promise, Reflect, JSON: the walk reaches the built-ins, far below the top.
  for (const path of ["Array/prototype", "Promise", "Reflect", "JSON", "Object/prototype"]) {
    assert.ok(byNode.includes(path), path);
  }
  assert.ok(byNode.length > 500, `only ${byNode.length} frozen objects found`);
  const open = run(
    [],
    `${RESOLVE}\n${FREEZE}\nconst paths = ${JSON.stringify(byNode)};\n` +
      `console.log(JSON.stringify(paths.filter((path) => { const value = resolve(path); return value === undefined || !Object.isFrozen(value); })));`,
  );
  assert.deepEqual(open, []);
});

test("keeps the members V8's fast paths watch as data, so no protector is invalidated", () => {
  // V8 names each protector it invalidates on stdout; each mutation below names its own.
  const trace = (source: string) =>
    spawnSync(
      process.execPath,
      ["--trace-protector-invalidation", "--input-type=module", "-e", source],
      { encoding: "utf8" },
    ).stdout;
  assert.equal(trace(`${FREEZE}\nconsole.log("frozen");`), "frozen\n");
  for (const [member, protector] of [
    ["Array.prototype, 'constructor'", "ArraySpeciesLookupChain"],
    ["Promise.prototype, 'then'", "PromiseThenLookupChain"],
  ]) {
    const redefined = `Object.defineProperty(${member}, { get() {} });`;
    assert.match(trace(redefined), new RegExp(`Invalidating protector cell ${protector}`));
  }
});

test("built-ins refuse patches; objects still assign their own members over inherited ones", () => {
  const source = `${FREEZE}
const outcomes = {};
const attempt = (name, action) => {
  try { action(); outcomes[name] = "allowed"; } catch (error) { outcomes[name] = error.name; }
};
attempt("replace a method", () => { Array.prototype.map = () => [] });
attempt("replace a watched member", () => { Promise.prototype.then = () => {} });
attempt("replace a watched iterator", () => { Array.prototype[Symbol.iterator] = () => {} });
attempt("add a member", () => { Object.prototype.polluted = 1 });
attempt("redefine a member", () => Object.defineProperty(Error.prototype, "message", { value: "x" }));
attempt("replace a static", () => { JSON.parse = () => 1 });
attempt("replace a timer", () => { setTimeout.call = () => 1 });
attempt("replace through an override accessor", () => { Object.prototype.toString = () => "x" });
const error = new Error("boom");
error.name = "Custom";
const plain = {};
plain.toString = () => "own";
const date = new Date(0);
date.toJSON = () => "own";
const fn = function () {};
fn.toString = () => "own function";
console.log(JSON.stringify({
  outcomes,
  overrides: [error.name, String(plain), JSON.stringify(date), String(fn), Error.prototype.name],
  works: [[3, 1, 2].map((n) => n * 2).sort(), [...new Set([1, 1, 2])], Object.keys({ a: 1 })],
}));`;
  const { outcomes, overrides, works } = run([], source) as {
    outcomes: Record<string, string>;
    overrides: unknown[];
    works: unknown[];
  };
  assert.equal(Object.keys(outcomes).length, 8);
  for (const [name, outcome] of Object.entries(outcomes)) assert.equal(outcome, "TypeError", name);
  assert.deepEqual(overrides, ["Custom", "own", '"own"', "own function", "Error"]);
  assert.deepEqual(works, [[2, 4, 6], [1, 2], ["a"]]);
});
