// Node's structuredClone serializes a host object it knows as transferable or cloneable (a
// ReadableStream, a Blob) by calling the object's own [messaging_transfer_symbol] or
// [messaging_clone_symbol] method, looked up on its prototype chain, and the other side rebuilds
// it from the "module:Class" name that method returns, with Node's internal require. Machine code
// can subclass those classes and name any class it likes: an internal/fs/promises FileHandle on
// a descriptor of its choosing reads and writes past the permission model, such as fd 3, the
// sandbox's channel to the server, where it can speak for another version.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { SandboxNotification } from "../../src/runtime/sandbox-contract.js";
import { SandboxPool } from "../../src/runtime/sandbox-pool.js";
import { callExport, memoryLogger, target, TEST_ADAPTER } from "./sandbox-helpers.js";

const VICTIM = `
export default { id: "victim" };
export const hello = () => "hello";
`;

const ESCAPE = `
export default { id: "escape" };
const symbol = (o, name) => Object.getOwnPropertySymbols(o).find((s) => s.description === name);

// A host object Node rebuilds as whatever "module:Class" its transfer or clone method names.
function fileHandle(fd) {
  const kTransfer = symbol(ReadableStream.prototype, "messaging_transfer_symbol");
  const kClone = symbol(Blob.prototype, "messaging_clone_symbol");
  const spec = () => ({ data: { handle: { fd } }, deserializeInfo: "internal/fs/promises:FileHandle" });
  const tries = [];
  if (kTransfer) {
    class Stream extends ReadableStream {}
    Object.defineProperty(Stream.prototype, kTransfer, { value: spec });
    tries.push(() => { const s = new Stream(); return structuredClone(s, { transfer: [s] }); });
  }
  if (kClone) {
    class Forged extends Blob {}
    Object.defineProperty(Forged.prototype, kClone, { value: spec });
    tries.push(() => structuredClone(new Forged([])));
  }
  for (const attempt of tries) {
    try {
      const handle = attempt();
      if (handle && typeof handle.write === "function" && handle.fd === fd) return handle;
    } catch {}
  }
  return undefined;
}

export function cloneAndTransfer() {
  const buffer = new Uint8Array([1, 2, 3]).buffer;
  const copy = structuredClone({ list: [1, { nested: "x" }], date: new Date(0) });
  const moved = structuredClone({ view: new Uint8Array(buffer) }, { transfer: [buffer] });
  return { copy, detached: buffer.byteLength, moved: [...moved.view] };
}

export async function speakFor(versionId) {
  const handle = fileHandle(3);
  if (handle === undefined) return "refused";
  const line = JSON.stringify({ type: "notify", versionId, json: JSON.stringify({ forged: true }) });
  await handle.write(line + "\\n");
  return "written to fd 3";
}
`;

let pool: SandboxPool;
const notifications: SandboxNotification[] = [];

before(() => {
  pool = new SandboxPool({ adapterPath: TEST_ADAPTER, size: 1, logger: memoryLogger() });
  pool.onNotification((notification) => notifications.push(notification));
});
after(() => pool.close());

test("a subclass of a transferable web class cannot be cloned into a FileHandle", async () => {
  const options = { affinity: "escape" };
  const victim = target("org_evil", VICTIM);
  assert.equal(await callExport(pool, victim, "hello", [], options), "hello");
  const escape = target("org_evil", ESCAPE);
  const result = await callExport(pool, escape, "speakFor", [victim.versionId], options);
  // Whatever was written reaches the pool before the call's own answer; give it a moment anyway.
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.deepEqual({ result, notifications }, { result: "refused", notifications: [] });
  // Plain values still clone, and ArrayBuffers still transfer.
  assert.deepEqual(await callExport(pool, escape, "cloneAndTransfer", [], options), {
    copy: { list: [1, { nested: "x" }], date: "1970-01-01T00:00:00.000Z" },
    detached: 0,
    moved: [1, 2, 3],
  });
});
