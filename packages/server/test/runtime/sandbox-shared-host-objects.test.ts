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
import { callExport, memoryLogger, target, TEST_ADAPTER } from "./sandbox-helpers.js";

const WALKER = `
export default { id: "walker" };
const contextRoots = [Object.prototype, Function.prototype];
const isContextObject = (value) => {
  for (let p = value; p !== null; p = Object.getPrototypeOf(p)) if (contextRoots.includes(p)) return true;
  return false;
};
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

function walk(roots) {
  const paths = new Map();
  const queue = [];
  const reach = (value, path, depth) => {
    if ((typeof value !== "object" && typeof value !== "function") || value === null) return;
    if (paths.has(value)) return;
    paths.set(value, path);
    queue.push([value, path, depth]);
  };
  reach(roots, "", 0);
  for (let at = 0; at < queue.length && at < 100_000; at++) {
    const [value, path, depth] = queue[at];
    // The context's own objects are machine code's to change: past the record of what was
    // handed out (and globalThis in it), only host objects lead on.
    const own = isContextObject(value);
    if (own && depth > 2) continue;
    const keys = new Set(Reflect.ownKeys(value));
    if (!own) {
      reach(Object.getPrototypeOf(value), path + ".__proto__", depth + 1);
      for (let p = Object.getPrototypeOf(value); p !== null; p = Object.getPrototypeOf(p)) {
        for (const key of Reflect.ownKeys(p)) keys.add(key);
      }
    }
    for (const key of keys) {
      if (typeof key === "string" && /^[0-9]+$/.test(key) && !Array.isArray(value)) continue;
      const name = path + "." + String(key);
      const member = Reflect.getOwnPropertyDescriptor(value, key);
      if (member !== undefined && !("value" in member)) {
        reach(member.get, name + "<get>", depth + 1);
        reach(member.set, name + "<set>", depth + 1);
      }
      if (key === "caller" || key === "arguments") continue;
      try { reach(value[key], name, depth + 1); } catch {}
    }
  }
  return paths;
}

// Open: members can be added, or one can be redefined or reassigned to an object or function
// (a prototype frozen but for a writable primitive, EventEmitter's kCapture, is closed).
function isOpen(value) {
  if (Object.isExtensible(value)) return true;
  return Reflect.ownKeys(value).some((key) => {
    const d = Reflect.getOwnPropertyDescriptor(value, key);
    if (d.configurable) return true;
    return "value" in d && d.writable && ((typeof d.value === "object" && d.value !== null) || typeof d.value === "function");
  });
}

// A class (or a constructor function): objects were made with it, or its prototype carries
// members, or inherits from another's. The other host functions are methods, which host code
// calls but never reads members of, and never constructs with.
function isClass(fn, madePrototypes) {
  const prototype = Reflect.getOwnPropertyDescriptor(fn, "prototype")?.value;
  if (typeof prototype !== "object" || prototype === null) return false;
  if (madePrototypes.has(prototype)) return true;
  const parent = Object.getPrototypeOf(prototype);
  return Reflect.ownKeys(prototype).some((key) => key !== "constructor") || (parent !== null && Object.getPrototypeOf(parent) !== null);
}

export async function openSharedHostObjects() {
  const first = walk(await handedOut());
  const second = walk(await handedOut());
  const madePrototypes = new Set([...first.keys()].map((value) => Object.getPrototypeOf(value)));
  // A method's own prototype object is inert: nothing constructs with a method.
  const inert = new Set();
  for (const value of first.keys()) {
    if (typeof value === "function" && !isClass(value, madePrototypes)) {
      inert.add(Reflect.getOwnPropertyDescriptor(value, "prototype")?.value);
    }
  }
  const open = [];
  for (const [value, path] of first) {
    if (!second.has(value) || isContextObject(value) || inert.has(value)) continue;
    if (typeof value === "function" && !isClass(value, madePrototypes)) continue;
    if (isOpen(value)) open.push(path);
  }
  return { walked: first.size, open };
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
