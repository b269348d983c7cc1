// Every host object two versions of a sandbox process share must be frozen, or one version can
// patch what the others (and the sandbox's own code) use. Each escape closed so far was one such
// object found by hand (EventEmitter.prototype behind a CompressionStream, Writable behind the
// statics of its class, a listener record, an iterator). This walks, as machine code can, from
// the globals and from what they hand out: own members, symbol-keyed ones, getters read on their
// objects, prototypes. It walks twice, from fresh objects each time: what both walks meet is
// shared by the whole process, and of that, no prototype, class or plain object may be open.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { SandboxPool } from "../../src/runtime/sandbox-pool.js";
import { SHARED_HOST_OBJECT_WALK } from "./sandbox-host-object-walk.js";
import { callExport, memoryLogger, target, TEST_ADAPTER } from "./sandbox-helpers.js";

const WALKER = `${SHARED_HOST_OBJECT_WALK}
export default { id: "walker" };
const failed = (promise) => promise.then(() => null, (error) => error);

// util.inspect, which Node hands to an object's inspect.custom method when one of its error
// messages describes the object.
function hostInspect() {
  let inspect = null;
  const bait = Object.create(null);
  bait[Symbol.for("nodejs.util.inspect.custom")] = (depth, options, hostInspect) => {
    inspect = hostInspect;
    return "bait";
  };
  try { new Blob(bait); } catch {}
  return inspect;
}

// The objects machine code gets from the globals, made afresh for each walk.
async function handedOut() {
  const bytes = () => new Blob(["hello"]).stream();
  const compressed = new Response(bytes().pipeThrough(new CompressionStream("gzip")));
  const form = new FormData();
  form.append("file", new Blob(["x"]), "x.txt");
  const transform = new TransformStream();
  transform.writable.getWriter().write("x");
  const objects = {
    globalThis,
    compress: new CompressionStream("gzip"),
    decompress: new DecompressionStream("deflate-raw"),
    encoderStream: new TextEncoderStream(),
    decoderStream: new TextDecoderStream(),
    decoders: ["utf-8", "utf-16le", "latin1", "shift_jis"].map((name) => new TextDecoder(name)),
    blob: new File(["x"], "x.txt"),
    readers: [bytes().getReader(), bytes().getReader({ mode: "byob" }), bytes().values()],
    tee: bytes().tee(),
    byteTee: new ReadableStream({ type: "bytes" }).tee(),
    transform,
    writer: new WritableStream().getWriter(),
    pipe: bytes().pipeTo(new WritableStream()),
    response: compressed,
    responses: [new Response("x"), Response.json({}), Response.error(), new Response(form).clone()],
    request: new Request("https://a.test", { method: "POST", body: "x" }).clone(),
    fetched: await fetch("data:text/plain,hello"),
    form: await new Response(form).formData(),
    headers: [new Headers({ a: "b" }).entries(), new URLSearchParams("a=b").entries()],
    url: new URL("https://a.test/?a=b"),
    inspect: hostInspect(),
    signals: [AbortSignal.timeout(60_000), AbortSignal.any([new AbortController().signal]), AbortSignal.abort()],
    target: new EventTarget(),
    events: [new Event("x"), new DOMException("x")],
    strategies: [new ByteLengthQueuingStrategy({ highWaterMark: 1 }), new CountQueuingStrategy({ highWaterMark: 1 })],
    keys: [
      await crypto.subtle.importKey("raw", new Uint8Array(16), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]),
      await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]),
      await crypto.subtle.generateKey({ name: "AES-GCM", length: 128 }, true, ["encrypt"]),
    ],
    errors: [
      await failed(fetch("http://127.0.0.1:1/")),
      await failed(new Response(bytes().pipeThrough(new DecompressionStream("gzip"))).text()),
      await failed(Promise.resolve().then(() => new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array([255])))),
    ],
  };
  objects.target.addEventListener("x", () => {});
  objects.compressedText = await compressed.clone().text();
  return objects;
}

export async function openSharedHostObjects() {
  return findOpenSharedHostObjects(handedOut);
}
`;

let pool: SandboxPool;

before(() => {
  pool = new SandboxPool({ adapterPath: TEST_ADAPTER, size: 1, logger: memoryLogger() });
});
after(() => pool.close());

test("no prototype, class or object the versions of a sandbox share is left open to patching", async () => {
  const walker = target("org_evil", WALKER);
  const result = (await callExport(pool, walker, "openSharedHostObjects", [], {
    timeoutMs: 60_000,
  })) as { walked: number; open: string[] };
  // The walk reaches Node's internals (thousands of objects), or it proves nothing.
  assert.ok(result.walked > 2000, `walked ${result.walked}`);
  assert.deepEqual(result.open, []);
});
