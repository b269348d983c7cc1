// A CompressionStream's [kHandle] is a zlib stream, whose class inherits the statics of Node's
// legacy Stream: Writable, PassThrough, `promises` (stream/promises) and the rest of node:stream.
// Those are the same objects for every version of a sandbox process. Left open, one version could
// patch Writable.prototype (or replace it, since Writable is a plain function) and be handed the
// streams another version makes, with the callbacks of that version's realm inside them, and so
// its globals; or patch stream.promises.pipeline for everyone who pipes through it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { versionsSharingAProcess } from "./sandbox-helpers.js";

const NODE_STREAM = `
function nodeStream() {
  const stream = new CompressionStream("gzip");
  const handle = stream[Object.getOwnPropertySymbols(stream).find((s) => s.description === "kHandle")];
  return handle.constructor;
}
`;

const VICTIM = `
export default { id: "victim" };
globalThis.secret = "the victim's secret";
${NODE_STREAM}
export async function writeThrough() {
  const { Writable, PassThrough, promises } = nodeStream();
  const written = [];
  const sink = new Writable({ write(chunk, encoding, callback) { written.push(String(chunk)); callback(); } });
  const source = new PassThrough();
  const done = promises.pipeline(source, sink);
  source.end("hello");
  await done;
  return written.join("");
}
`;

const ESCAPE = `
export default { id: "escape" };
${NODE_STREAM}
const caught = [];

export function patchStreamStatics() {
  const Stream = nodeStream();
  const { Writable, PassThrough, promises } = Stream;
  const write = Writable.prototype.write;
  const pipeline = promises.pipeline;
  const tries = {
    writableWrite: () => {
      Writable.prototype.write = function (...args) { caught.push(this); return Reflect.apply(write, this, args); };
    },
    writablePrototype: () => { Writable.prototype = Object.create(Writable.prototype); },
    passThroughPrototype: () => { PassThrough.prototype.polluted = "yes"; },
    passThroughInstances: () => { Object.defineProperty(PassThrough, Symbol.hasInstance, { value: () => true }); },
    promisesPipeline: () => {
      promises.pipeline = (...streams) => { caught.push(...streams); return Reflect.apply(pipeline, promises, streams); };
    },
  };
  const taken = [];
  for (const [name, attempt] of Object.entries(tries)) {
    try { attempt(); taken.push(name); } catch {}
  }
  return taken;
}

export function loot() {
  for (const stream of caught) {
    try {
      const global = stream._write.constructor("return globalThis")();
      if (global !== globalThis && typeof global.secret === "string") return global.secret;
    } catch {}
  }
  return null;
}
`;

const { attacker, victim } = versionsSharingAProcess(ESCAPE, VICTIM);

test("Node's stream classes reached as statics (Writable, PassThrough, stream.promises) cannot be patched for another version", async () => {
  const taken = await attacker("patchStreamStatics");
  // The streams still work, frozen.
  assert.equal(await victim("writeThrough"), "hello");
  const looted = await attacker("loot");
  assert.deepEqual({ taken, looted }, { taken: [], looted: null });
});
