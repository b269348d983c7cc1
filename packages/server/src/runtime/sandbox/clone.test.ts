import assert from "node:assert/strict";
import { test } from "node:test";
import { sandboxStructuredClone } from "./clone.js";

// As the web's structuredClone: what cannot be cloned is a DOMException named DataCloneError,
// host objects (a Blob, a stream) and SharedArrayBuffers included, not V8's plain Error.
for (const [what, make] of [
  ["a Blob", () => new Blob(["x"])],
  ["a ReadableStream", () => new ReadableStream()],
  ["a SharedArrayBuffer", () => new SharedArrayBuffer(4)],
  ["a function", () => ({ f() {} })],
] as const) {
  test(`cloning ${what} throws a DataCloneError`, () => {
    assert.throws(
      () => sandboxStructuredClone(make()),
      (error: unknown) => error instanceof DOMException && error.name === "DataCloneError",
    );
  });
}
