// The pool's side of the wire: framing and message validation as units, then a compromised sandbox
// process sending garbage around its replies.
import assert from "node:assert/strict";
import { test } from "node:test";
import { SandboxPool } from "../../src/runtime/sandbox-pool.js";
import { encodeLine, LineReader } from "../../src/runtime/sandbox/line-reader.js";
import { parseChildMessage } from "../../src/runtime/sandbox/protocol.js";
import {
  GARBAGE_CHILD,
  memoryLogger,
  rejectionCode,
  target,
  TEST_ADAPTER,
} from "./sandbox-helpers.js";

function collect(maxLineLength = 1000) {
  const seen = { values: [] as unknown[], malformed: 0, overflow: 0 };
  const reader = new LineReader(maxLineLength, {
    value: (value) => seen.values.push(value),
    malformed: () => seen.malformed++,
    overflow: () => seen.overflow++,
  });
  return { reader, seen };
}

test("LineReader reassembles lines split anywhere, even inside a UTF-8 character", () => {
  const { reader, seen } = collect();
  const bytes = Buffer.from(encodeLine({ text: "héllo ✓ line\nbreak" }) + encodeLine([1]));
  for (let i = 0; i < bytes.length; i++) reader.push(bytes.subarray(i, i + 1));
  assert.deepEqual(seen.values, [{ text: "héllo ✓ line\nbreak" }, [1]]);
});

test("LineReader reports bad lines and carries on, and stops for good on an overlong one", () => {
  const { reader, seen } = collect(20);
  reader.push('{bad\n\n{"ok":1}\n');
  assert.deepEqual(seen, { values: [{ ok: 1 }], malformed: 1, overflow: 0 });
  reader.push("x".repeat(21));
  assert.equal(seen.overflow, 1);
  reader.push('\n{"ok":2}\n');
  assert.deepEqual(seen.values, [{ ok: 1 }], "nothing is read after an overflow");
});

test("parseChildMessage accepts exactly the known shapes", () => {
  assert.deepEqual(parseChildMessage({ type: "result", id: 3, result: "1" }), {
    type: "result",
    id: 3,
    result: "1",
  });
  assert.deepEqual(
    parseChildMessage({ type: "error", id: 3, error: { message: "m", code: "c" }, extra: 1 }),
    { type: "error", id: 3, error: { message: "m", code: "c" } },
  );
  assert.deepEqual(parseChildMessage({ type: "recalled", ids: [4, 2] }), {
    type: "recalled",
    ids: [4, 2],
  });
  const inherited: unknown = Object.create({ type: "ready" });
  for (const bad of [
    null,
    "ready",
    [],
    inherited,
    { type: "result", id: "3", result: "1" },
    { type: "result", id: -1, result: "1" },
    { type: "result", id: 2 ** 60, result: "1" },
    { type: "result", id: 1, result: 1 },
    { type: "error", id: 1, error: { message: 1, code: "c" } },
    { type: "notify", versionId: 1, json: "{}" },
    { type: "log", level: "fatal", message: "m" },
    { type: "log", level: "info", message: "m", versionId: 5 },
    { type: "pong" },
    { type: "recalled", ids: 3 },
    { type: "recalled", ids: [3, -1] },
    { type: "recalled", ids: ["3"] },
    { type: "NODE_HANDLE" },
  ]) {
    assert.equal(parseChildMessage(bad), undefined, JSON.stringify(bad));
  }
});

test("a sandbox sending garbage around its replies cannot disturb the host", async () => {
  const logger = memoryLogger();
  // Room for the flood's 80 MB line, held twice (text and bytes) within the data limit, so that
  // the line's length, not the process's memory, is what gets it killed.
  const pool = new SandboxPool({
    adapterPath: TEST_ADAPTER,
    childEntry: GARBAGE_CHILD,
    maxResidentMb: 768,
    logger,
  });
  try {
    const at = target("org_a", "export default {}");
    for (let i = 0; i < 3; i++) {
      assert.equal(await pool.call(at, "echo", `"${i}"`), JSON.stringify({ echo: `"${i}"` }));
    }
    assert.ok(pool.stats.protocolErrors >= 10, String(pool.stats.protocolErrors));
    assert.ok(
      logger.entries.some((entry) => /more than it was given/.test(String(entry.fields?.detail))),
      "a recalled list longer than the calls it holds is refused as such",
    );
    assert.equal(pool.stats.killed + pool.stats.crashed, 0);

    // A line past the limit gets the process killed; the call fails, the next one is served.
    assert.equal(await rejectionCode(pool.call(at, "flood", "{}")), "sandbox-crashed");
    assert.equal(pool.stats.killed, 1);
    assert.equal(await pool.call(at, "echo", '"after"'), JSON.stringify({ echo: '"after"' }));
  } finally {
    await pool.close();
  }
});
