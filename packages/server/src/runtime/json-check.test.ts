import assert from "node:assert/strict";
import { test } from "node:test";
import {
  MAX_CALLER_JSON_DEPTH,
  callerNestingProblem,
  mayHoldMoreContainers,
  findNonJson,
  nestsDeeperThan,
} from "./json-check.js";

/** `depth` arrays one inside the other, around `inner`. */
function nested(depth: number, inner: unknown = 1): unknown {
  let value = inner;
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

test("findNonJson walks values nested far deeper than the stack allows recursion", () => {
  assert.equal(findNonJson(nested(200_000)), undefined);
  const problem = findNonJson(nested(200_000, () => 1));
  assert.ok(problem?.startsWith("context[0][0]"), problem?.slice(0, 40));
  assert.ok(problem?.endsWith("[0] is a function"));
});

test("findNonJson names the first problem in document order", () => {
  assert.equal(findNonJson({ a: [{ b: 1n }], c: NaN }), "context.a[0].b is a bigint");
  assert.equal(
    findNonJson([{ d: new Date(0) }, undefined], "event"),
    "event[0].d is a Date, not a plain object",
  );
  assert.equal(findNonJson([1, undefined, () => 1]), "context[1] is undefined");
  assert.equal(findNonJson({ a: 1, b: Infinity }), "context.b is Infinity");
  assert.equal(findNonJson(Symbol("s")), "context is a symbol");
});

test("findNonJson allows what JSON carries, undefined properties and shared objects", () => {
  const shared = { x: [1, "two", true, null] };
  assert.equal(findNonJson({ a: shared, b: shared, c: undefined, d: {}, e: [] }), undefined);
  assert.equal(findNonJson(Object.assign(Object.create(null) as object, { a: 1 })), undefined);
  assert.equal(findNonJson(undefined), undefined);
  assert.equal(findNonJson("text"), undefined);
});

test("findNonJson reports a cycle where it closes", () => {
  const node: Record<string, unknown> = { list: [] };
  (node.list as unknown[]).push({ back: node });
  assert.equal(findNonJson(node), "context.list[0].back is a circular reference");
  const array: unknown[] = [];
  array.push(array);
  assert.equal(findNonJson(array, "event"), "event[0] is a circular reference");
});

test("nestsDeeperThan counts objects and arrays, not scalars", () => {
  assert.equal(nestsDeeperThan(1, 0), false);
  assert.equal(nestsDeeperThan({}, 0), true);
  assert.equal(nestsDeeperThan({}, 1), false);
  assert.equal(nestsDeeperThan({ a: [{ b: "x" }] }, 3), false);
  assert.equal(nestsDeeperThan({ a: [{ b: "x" }] }, 2), true);
  // The deep branch is found whichever sibling it is.
  assert.equal(nestsDeeperThan([[[1]], 2, 3], 2), true);
  assert.equal(nestsDeeperThan([1, 2, [[3]]], 2), true);
  assert.equal(nestsDeeperThan(nested(1_000_000), 10), true);
});

test("callerNestingProblem allows MAX_CALLER_JSON_DEPTH levels and refuses one more", () => {
  assert.equal(callerNestingProblem(nested(MAX_CALLER_JSON_DEPTH), "the body"), undefined);
  assert.equal(
    callerNestingProblem(nested(MAX_CALLER_JSON_DEPTH + 1), "the body"),
    `the body nests deeper than ${MAX_CALLER_JSON_DEPTH} levels`,
  );
  assert.equal(callerNestingProblem({ a: { b: { c: "ok" } } }, "x"), undefined);
});

test("mayHoldMoreContainers counts every { and [, and reads no text too short to hold more", () => {
  assert.equal(mayHoldMoreContainers("[{},{},{}]", 4), false);
  assert.equal(mayHoldMoreContainers("[{},{},{},{}]", 4), true);
  // Those in strings count too: never too few.
  assert.equal(mayHoldMoreContainers(JSON.stringify({ text: "{[{[{[" }), 4), true);
  // At most `max` characters: at most max / 2 containers, not read.
  assert.equal(mayHoldMoreContainers("[[[[", 4), false);
  assert.equal(mayHoldMoreContainers("x".repeat(100), 4), false);
});
