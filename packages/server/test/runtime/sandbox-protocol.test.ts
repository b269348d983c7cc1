// The pool's side of the wire: framing and message validation as units, then a compromised sandbox
// process sending garbage around its replies.
import assert from "node:assert/strict";
import { test } from "node:test";
import { SandboxPool } from "../../src/runtime/sandbox-pool.js";
import { encodeLine, encodeLineWithBody } from "../../src/runtime/sandbox/line-encoding.js";
import { LineReader } from "../../src/runtime/sandbox/line-reader.js";
import {
  childMessageHasBody,
  encodeChildMessage,
  encodeParentMessage,
  parentMessageHasBody,
  parseChildMessage,
  parseParentMessage,
} from "../../src/runtime/sandbox/protocol.js";
import {
  GARBAGE_CHILD,
  memoryLogger,
  rejectionCode,
  target,
  TEST_ADAPTER,
} from "./sandbox-helpers.js";

function collect(maxLineLength = 1000, announcesBody?: (value: unknown) => boolean) {
  const seen = { values: [] as unknown[], bodies: [] as unknown[], malformed: 0, overflow: 0 };
  const reader = new LineReader(
    maxLineLength,
    {
      value: (value, body) => {
        seen.values.push(value);
        seen.bodies.push(body);
      },
      malformed: () => seen.malformed++,
      overflow: () => seen.overflow++,
    },
    announcesBody,
  );
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
  assert.deepEqual(seen, { values: [{ ok: 1 }], bodies: [undefined], malformed: 1, overflow: 0 });
  reader.push("x".repeat(21));
  assert.equal(seen.overflow, 1);
  reader.push('\n{"ok":2}\n');
  assert.deepEqual(seen.values, [{ ok: 1 }], "nothing is read after an overflow");
});

test("a message that announces a body takes the next line as it is, whatever it holds", () => {
  const { reader, seen } = collect(1000, (value) => (value as { body?: unknown }).body === true);
  const body = '{"text":"a \\"quoted\\" line\\nbreak ✓"}';
  const bytes = Buffer.from(
    encodeLineWithBody({ body: true }, body) +
      encodeLine({ plain: 1 }) +
      // Lines the reader would otherwise skip or refuse are a body all the same.
      encodeLineWithBody({ body: true }, "") +
      encodeLineWithBody({ body: true }, "{not json"),
  );
  for (let i = 0; i < bytes.length; i++) reader.push(bytes.subarray(i, i + 1));
  assert.deepEqual(seen.values, [{ body: true }, { plain: 1 }, { body: true }, { body: true }]);
  assert.deepEqual(seen.bodies, [body, undefined, "", "{not json"]);
  assert.equal(seen.malformed, 0);
});

test("a body's raw newlines, whitespace in JSON, become spaces: the same JSON on one line", () => {
  const { reader, seen } = collect(1000, () => true);
  const pretty = JSON.stringify({ a: [1, "x\ny"], b: { c: null } }, null, 2);
  assert.ok(pretty.includes("\n"));
  reader.push(encodeLineWithBody({}, pretty));
  assert.equal(seen.values.length, 1);
  assert.deepEqual(JSON.parse(seen.bodies[0] as string), JSON.parse(pretty));
});

test("a call's payload and a result's JSON travel as bodies, unescaped", () => {
  const payload = JSON.stringify({ snapshot: { value: "on" }, event: { type: 't"q' } });
  const callLines = encodeParentMessage({
    type: "call",
    id: 7,
    versionId: "v",
    op: "send",
    payload,
  });
  assert.equal(callLines, `{"type":"call","id":7,"versionId":"v","op":"send"}\n${payload}\n`);
  const { reader: childSide, seen: toChild } = collect(1000, parentMessageHasBody);
  childSide.push(callLines);
  childSide.push(encodeParentMessage({ type: "ping", seq: 1 }));
  assert.deepEqual(
    toChild.values.map((value, i) => parseParentMessage(value, toChild.bodies[i] as undefined)),
    [
      { type: "call", id: 7, versionId: "v", op: "send", payload },
      { type: "ping", seq: 1 },
    ],
  );

  const result = JSON.stringify({ outcome: "step", note: 'a "b"' });
  const resultLines = encodeChildMessage({ type: "result", id: 7, result });
  assert.equal(resultLines, `{"type":"result","id":7}\n${result}\n`);
  const { reader: poolSide, seen: toPool } = collect(1000, childMessageHasBody);
  poolSide.push(resultLines);
  poolSide.push(encodeChildMessage({ type: "pong", seq: 2 }));
  assert.deepEqual(
    toPool.values.map((value, i) => parseChildMessage(value, toPool.bodies[i] as undefined)),
    [
      { type: "result", id: 7, result },
      { type: "pong", seq: 2 },
    ],
  );
});

test("only a result's exact header takes the next line as its body", () => {
  const { reader, seen } = collect(1000, childMessageHasBody);
  // Padded, with the old inline field, or with a bad id: read as messages, each line on its own.
  reader.push('{"type":"result","id":1,"pad":[{},{},{}]}\n"body 1"\n');
  reader.push('{"type":"result","id":2,"result":"inline"}\n"body 2"\n');
  reader.push('{"type":"result","id":-3}\n"body 3"\n');
  reader.push('{"type":"result","id":4}\n"body 4"\n');
  // Seven lines, seven messages: only the last header took its body, and only it parses.
  assert.equal(seen.values.length, 7);
  assert.deepEqual(seen.bodies.slice(0, 6), Array(6).fill(undefined));
  const parsed = seen.values.map((value, i) =>
    parseChildMessage(value, seen.bodies[i] as undefined),
  );
  assert.deepEqual(parsed.slice(0, 6), Array(6).fill(undefined));
  assert.deepEqual(parsed[6], { type: "result", id: 4, result: '"body 4"' });
});

test("parseParentMessage takes a call only with its payload", () => {
  const header = { type: "call", id: 1, versionId: "v", op: "send" };
  assert.equal(parseParentMessage(header, undefined), undefined);
  assert.equal(parseParentMessage({ ...header, payload: "{}" }, undefined), undefined);
  assert.deepEqual(parseParentMessage(header, "{}"), { ...header, payload: "{}" });
});

test("parseChildMessage accepts exactly the known shapes", () => {
  assert.deepEqual(parseChildMessage({ type: "result", id: 3 }, "1"), {
    type: "result",
    id: 3,
    result: "1",
  });
  // A result's JSON is its body, never a field, and its header holds nothing else.
  assert.equal(parseChildMessage({ type: "result", id: 3, result: "1" }, undefined), undefined);
  assert.equal(parseChildMessage({ type: "result", id: 3, result: "field" }, "body"), undefined);
  assert.equal(parseChildMessage({ type: "result", id: 3 }, undefined), undefined);
  assert.deepEqual(
    parseChildMessage(
      { type: "error", id: 3, error: { message: "m", code: "c" }, extra: 1 },
      undefined,
    ),
    { type: "error", id: 3, error: { message: "m", code: "c" } },
  );
  assert.deepEqual(parseChildMessage({ type: "recalled", ids: [4, 2] }, undefined), {
    type: "recalled",
    ids: [4, 2],
  });
  const inherited: unknown = Object.create({ type: "ready" });
  for (const bad of [
    null,
    "ready",
    [],
    inherited,
    { type: "result", id: "3" },
    { type: "result", id: -1 },
    { type: "result", id: 2 ** 60 },
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
    assert.equal(parseChildMessage(bad, "1"), undefined, JSON.stringify(bad));
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
