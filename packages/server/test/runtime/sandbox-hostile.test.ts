// Hostile machine bundles: each must end in a coded error or a harmless result, and leave the pool
// serving other calls, versions and orgs.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { SandboxLoss } from "../../src/runtime/sandbox-contract.js";
import { SandboxPool } from "../../src/runtime/sandbox-pool.js";
import {
  callExport,
  memoryLogger,
  rejectionCode,
  target,
  TEST_ADAPTER,
  waitFor,
} from "./sandbox-helpers.js";

const HOSTILE = `
export default { id: "hostile" };
const id = crypto.randomUUID();
export const whoami = () => id;
export const wait = (ms) => new Promise((resolve) => setTimeout(() => resolve(id), ms));

export function spin() { for (;;) {} }
export function spinLater() { setTimeout(() => { for (;;) {} }, 50); return "started"; }
export function heapBomb() {
  const keep = [];
  for (let i = 0; ; i++) keep.push({ i, text: "x".repeat(64) + i });
}
// Bounded, so that a sandbox failing to stop it costs the test machine 1 GB at most.
export function bufferBomb() {
  const keep = [];
  for (let i = 0; i < 32; i++) keep.push(new Uint8Array(32 * 1024 * 1024).fill(1));
  return keep.length * 32;
}
// Memory taken but not written: no resident memory to notice, until it is written, which takes a
// fraction of a second (a gigabyte in about 0.7 s on a test machine).
export function reserveBuffers(totalMb) {
  const keep = [];
  try {
    while (keep.length * 64 < totalMb) keep.push(new ArrayBuffer(64 * 1024 * 1024));
  } catch (error) {
    return { heldMb: keep.length * 64, refused: error.name };
  }
  return { heldMb: keep.length * 64, refused: null };
}
export function growWasmMemory(totalMb) {
  const memory = new WebAssembly.Memory({ initial: 1 });
  try {
    memory.grow(totalMb * 16 - 1);
  } catch (error) {
    return { heldMb: memory.buffer.byteLength / 2 ** 20, refused: error.name };
  }
  return { heldMb: memory.buffer.byteLength / 2 ** 20, refused: null };
}
export function throwLater() {
  setTimeout(() => { throw new Error("boom from a timer"); }, 10);
  Promise.reject(new Error("nobody catches this"));
  return id;
}

export function probe() {
  const kinds = {};
  for (const name of ["process", "require", "Buffer", "global", "module", "exports", "__dirname",
    "__filename", "setImmediate", "fetch", "Request", "Response", "Headers", "URL", "URLSearchParams",
    "TextEncoder", "TextDecoder", "crypto", "atob", "btoa", "structuredClone", "setTimeout",
    "clearTimeout", "setInterval", "clearInterval", "queueMicrotask", "console", "AbortController",
    "Blob", "FormData", "CompressionStream", "DecompressionStream", "WebAssembly"]) {
    kinds[name] = typeof globalThis[name];
  }
  kinds["crypto.subtle.digest"] = typeof crypto.subtle.digest;
  kinds["crypto.getRandomValues"] = typeof crypto.getRandomValues;
  return kinds;
}

export async function webGlobals() {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode("abc")));
  const response = await fetch("data:text/plain,hello");
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return {
    digest: Array.from(digest.slice(0, 4)),
    fetched: await response.text(),
    url: new URL("/a?b=1", "https://example.com").href,
    base64: btoa("hi") + atob("aGk="),
    clone: structuredClone({ a: [1, 2] }),
    randomLength: bytes.length,
    timerId: typeof setTimeout(() => {}, 0),
  };
}

export async function dynamicImports() {
  const attempt = (load) => { try { return load().then(() => "imported", (e) => "refused: " + e.message); } catch (e) { return "refused: " + e.message; } };
  return {
    fs: await attempt(() => import("node:fs")),
    bare: await attempt(() => import("fs")),
    xstate: await attempt(() => import("xstate")),
    data: await attempt(() => import("data:text/javascript,export default 1")),
    viaFunction: await attempt(() => Function('return import("node:fs")')()),
  };
}

// For each way to reach a Function constructor: does calling it hand out the host's process?
export async function constructorEscapes() {
  const response = await fetch("data:text/plain,x");
  const reachable = {
    global: globalThis,
    object: {},
    fetchFunction: fetch,
    fetchPromise: fetch("data:text/plain,x"),
    response,
    urlClass: URL,
    url: new URL("https://example.com"),
    encoded: new TextEncoder().encode("x"),
    cloned: structuredClone({}),
    headers: new Headers(),
    blob: new Blob(["x"]),
    abort: new AbortController().signal,
    subtleResult: await crypto.subtle.digest("SHA-256", new Uint8Array(1)),
  };
  const outcomes = {};
  for (const [name, value] of Object.entries(reachable)) {
    try {
      const found = value.constructor.constructor("return typeof process")();
      outcomes[name] = "process is " + found;
    } catch (error) {
      outcomes[name] = "threw " + error.name;
    }
  }
  return outcomes;
}

export function ownRealmCodegen() {
  return [eval("1 + 1"), new Function("return typeof process")()];
}

// Tries to patch host-realm prototypes reachable through host objects.
export function pollute() {
  const hostObjectPrototype = Object.getPrototypeOf(Object.getPrototypeOf(new URL("https://a.test")));
  const hostArrayPrototype = Object.getPrototypeOf(hostObjectPrototype.constructor.keys({}));
  const hostTypedArrayPrototype = Object.getPrototypeOf(new TextEncoder().encode(""));
  const hostPromisePrototype = Object.getPrototypeOf(new Response("x").text());
  if ([hostArrayPrototype, hostTypedArrayPrototype, hostPromisePrototype].some((p) => p === Array.prototype || p === Uint8Array.prototype || p === Promise.prototype)) {
    throw new Error("a prototype of this realm, not the host's");
  }
  const attempts = {
    hostObjectPrototype: () => { hostObjectPrototype.polluted = "yes"; },
    hostFunctionPrototype: () => { Object.getPrototypeOf(URL).polluted = "yes"; },
    urlPrototype: () => { URL.prototype.toString = () => "patched"; },
    responsePrototype: () => { Response.prototype.text = () => "patched"; },
    headersPrototype: () => { Headers.prototype.get = () => "patched"; },
    urlClass: () => { URL.canParse = () => "patched"; },
    // Members the sandbox leaves as plain data for V8's fast paths (freeze-intrinsics.ts), on the
    // host's Array, %TypedArray% and Promise prototypes, reached through what host code hands out.
    hostArraySpecies: () => { hostArrayPrototype.constructor = Object; },
    hostArrayIterator: () => { hostArrayPrototype[Symbol.iterator] = function* () {}; },
    hostTypedArraySpecies: () => { hostTypedArrayPrototype.constructor = Object; },
    hostPromiseThen: () => { hostPromisePrototype.then = () => "patched"; },
    hostArraySpeciesDefined: () => { Object.defineProperty(hostArrayPrototype, "constructor", { get: () => Object }); },
  };
  const result = {};
  for (const [name, attempt] of Object.entries(attempts)) {
    try { attempt(); result[name] = "written"; } catch (error) { result[name] = "refused"; }
  }
  return result;
}

// The prototype Node gives every CryptoKey is reachable from a key only: patched, it would reach
// every key of the process, other versions' too.
export async function patchCryptoKeys() {
  const key = await crypto.subtle.importKey("raw", new Uint8Array(16), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const prototype = Object.getPrototypeOf(key);
  const result = {};
  const attempts = {
    added: () => { prototype.polluted = "yes"; },
    extractable: () => { Object.defineProperty(prototype, "extractable", { get: () => true }); },
  };
  for (const [name, attempt] of Object.entries(attempts)) {
    try { attempt(); result[name] = "written"; } catch (error) { result[name] = "refused"; }
  }
  return result;
}

export async function cryptoKeyPollutionVisible() {
  const key = await crypto.subtle.importKey("raw", new Uint8Array(16), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const exported = await crypto.subtle.exportKey("raw", key).then(() => "exported", () => "refused");
  return [key.polluted ?? null, key.extractable, exported];
}

// Host prototypes that no global leads to, only objects: the iterators of web classes, and the
// internal stream classes that tee(), TransformStream and the like hand out. One of each serves
// every version of the process.
function hiddenHostPrototypes() {
  return {
    headersIterator: Object.getPrototypeOf(new Headers().entries()),
    formDataIterator: Object.getPrototypeOf(new FormData().entries()),
    searchParamsIterator: Object.getPrototypeOf(new URLSearchParams().entries()),
    streamIterator: Object.getPrototypeOf(new ReadableStream().values()),
    internalReadable: Object.getPrototypeOf(new TransformStream().readable),
    internalWritable: Object.getPrototypeOf(new TransformStream().writable),
    internalByteStream: Object.getPrototypeOf(new ReadableStream({ type: "bytes" }).tee()[0]),
  };
}

export function patchHiddenPrototypes() {
  const result = {};
  for (const [name, prototype] of Object.entries(hiddenHostPrototypes())) {
    try { prototype.polluted = "yes"; result[name] = "written"; } catch (error) { result[name] = "refused"; }
  }
  return result;
}

export function hiddenPollutionVisible() {
  const result = {};
  for (const [name, prototype] of Object.entries(hiddenHostPrototypes())) {
    result[name] = prototype.polluted ?? null;
  }
  return result;
}

// What an open iterator prototype is worth: every header another version iterates.
const stolen = [];
export function stealHeaders() {
  const prototype = Object.getPrototypeOf(new Headers().entries());
  const next = prototype.next;
  const spy = function () {
    const step = next.call(this);
    if (!step.done) stolen.push(step.value.join(": "));
    return step;
  };
  try {
    Object.defineProperty(prototype, "next", { value: spy, writable: true, configurable: true });
    return "patched";
  } catch (error) {
    return "refused";
  }
}
export const stolenHeaders = () => stolen;
export const iterateHeaders = () => [...new Headers({ authorization: "Bearer secret" })].length;

export function pollutionVisible() {
  const hostObjectPrototype = Object.getPrototypeOf(Object.getPrototypeOf(new URL("https://a.test")));
  return [hostObjectPrototype.polluted ?? null, new URL("https://a.test").toString()];
}
`;

describe("hostile bundles", () => {
  const logger = memoryLogger();
  const losses: SandboxLoss[] = [];
  let pool: SandboxPool;
  const hostile = target("org_evil", HOSTILE);
  const bystander = target(
    "org_evil",
    `export default { id: "bystander" }; export const ok = () => "ok";`,
  );
  const otherOrg = target(
    "org_good",
    `export default { id: "good" }; export const ok = () => "ok";`,
  );

  before(() => {
    pool = new SandboxPool({
      adapterPath: TEST_ADAPTER,
      size: 2,
      callTimeoutMs: 1500,
      memoryLimitMb: 96,
      maxResidentMb: 320,
      logger,
    });
    pool.onSandboxLost((loss) => losses.push(loss));
  });
  after(() => pool.close());

  async function stillServing(): Promise<void> {
    assert.equal(typeof (await callExport(pool, hostile, "whoami")), "string");
    assert.equal(await callExport(pool, bystander, "ok"), "ok");
    assert.equal(await callExport(pool, otherOrg, "ok"), "ok");
  }

  test("an infinite loop costs its process a sandbox-timeout; other calls on it crash", async () => {
    const before = pool.stats;
    const innocent = rejectionCode(
      callExport(pool, hostile, "wait", [60_000], { affinity: "same", timeoutMs: 60_000 }),
    );
    await waitFor(() => pool.stats.started > before.started, "a process");
    const looping = rejectionCode(callExport(pool, hostile, "spin", [], { affinity: "same" }));
    assert.equal(await looping, "sandbox-timeout");
    assert.equal(await innocent, "sandbox-crashed");
    assert.equal(pool.stats.timeouts, before.timeouts + 1);
    assert.ok(losses.some((loss) => loss.affinities.includes("same")));
    await stillServing();
  });

  test("an infinite loop inside a timer is caught by the heartbeat", async () => {
    const before = pool.stats;
    assert.equal(
      await callExport(pool, hostile, "spinLater", [], { affinity: "service" }),
      "started",
    );
    await waitFor(() => pool.stats.unresponsive > before.unresponsive, "the heartbeat kill");
    const loss = losses.find((entry) => entry.affinities.includes("service"));
    assert.match(loss?.reason ?? "", /heartbeats/);
    await stillServing();
  });

  test("a heap bomb costs its process, never the host", async () => {
    const code = await rejectionCode(
      callExport(pool, hostile, "heapBomb", [], { timeoutMs: 60_000 }),
    );
    assert.ok(["sandbox-memory-exceeded", "sandbox-crashed"].includes(code), code);
    await stillServing();
  });

  test("an ArrayBuffer bomb fails its call, or costs its process", async () => {
    // Refused at the data limit (a RangeError), or killed if the resident check comes first.
    const code = await rejectionCode(
      callExport(pool, hostile, "bufferBomb", [], { timeoutMs: 60_000 }),
    );
    assert.ok(["machine-error", "sandbox-memory-exceeded"].includes(code), code);
    await stillServing();
  });

  // The resident check runs once per heartbeat, and reads memory written, not memory taken: a
  // call could take and fill gigabytes in between. Each allocation is now held to the cap.
  test("ArrayBuffers and WebAssembly memory past the resident cap are refused at once", async () => {
    for (const name of ["reserveBuffers", "growWasmMemory"]) {
      const outcome = await callExport(pool, hostile, name, [1024], { affinity: "reserve" }).then(
        (result) => result as { heldMb: number; refused: string | null },
        (error: unknown) => error as Error,
      );
      if (outcome instanceof Error) {
        // At the data limit V8 itself may be the one refused a page (the buffers the call before
        // took are not collected yet, or building the answer needs one): the process aborts at
        // once, a memory death by the limit. Not the resident check's kill, which comes only at
        // the next heartbeat, after the memory was held: that would fail here.
        assert.equal((outcome as { code?: unknown }).code, "sandbox-memory-exceeded", name);
        assert.match(outcome.message, /heap limit reached|memory limit reached/, name);
        continue;
      }
      assert.equal(outcome.refused, "RangeError", name);
      assert.ok(outcome.heldMb < 320, `${name} held ${outcome.heldMb} MB`);
    }
    await stillServing();
  });

  test("errors thrown by timers and unhandled rejections are logged, not fatal", async () => {
    const before = pool.stats;
    const id = await callExport(pool, hostile, "throwLater", [], { affinity: "thrower" });
    await waitFor(
      () => logger.entries.some((entry) => entry.message.includes("boom from a timer")),
      "the timer error in the log",
    );
    await waitFor(
      () => logger.entries.some((entry) => entry.message.includes("nobody catches this")),
      "the rejection in the log",
    );
    assert.equal(await callExport(pool, hostile, "whoami", [], { affinity: "thrower" }), id);
    assert.equal(pool.stats.crashed, before.crashed);
  });

  test("machine code sees web globals and no Node globals", async () => {
    const kinds = (await callExport(pool, hostile, "probe")) as Record<string, string>;
    for (const name of ["process", "require", "Buffer", "global", "module", "exports"]) {
      assert.equal(kinds[name], "undefined", name);
    }
    for (const name of ["__dirname", "__filename", "setImmediate"]) {
      assert.equal(kinds[name], "undefined", name);
    }
    for (const [name, kind] of Object.entries(kinds)) {
      if (!["process", "require", "Buffer", "global", "module", "exports"].includes(name)) {
        if (!["__dirname", "__filename", "setImmediate"].includes(name)) {
          assert.notEqual(kind, "undefined", name);
        }
      }
    }
    assert.deepEqual(await callExport(pool, hostile, "webGlobals"), {
      digest: [186, 120, 22, 191],
      fetched: "hello",
      url: "https://example.com/a?b=1",
      base64: "aGk=hi",
      clone: { a: [1, 2] },
      randomLength: 8,
      timerId: "number",
    });
  });

  test("import() of anything fails", async () => {
    const results = (await callExport(pool, hostile, "dynamicImports")) as Record<string, string>;
    for (const [name, result] of Object.entries(results)) {
      assert.match(result, /^refused: /, name);
    }
  });

  test("no Function constructor it can reach builds code that sees the host", async () => {
    const outcomes = (await callExport(pool, hostile, "constructorEscapes")) as Record<
      string,
      string
    >;
    assert.equal(outcomes.global, "process is undefined", "the global object's constructor");
    assert.equal(outcomes.object, "process is undefined", "the context's own Function");
    assert.equal(outcomes.fetchFunction, "process is undefined", "wrapped host functions");
    assert.equal(outcomes.fetchPromise, "process is undefined", "their promises");
    for (const [name, outcome] of Object.entries(outcomes)) {
      // Host objects lead to the host's Function, which refuses to generate code.
      assert.ok(
        ["process is undefined", "threw EvalError"].includes(outcome),
        `${name}: ${outcome}`,
      );
    }
    assert.equal(outcomes.url, "threw EvalError");
    assert.equal(outcomes.response, "threw EvalError");
  });

  test("eval and Function work on the context's own realm", async () => {
    assert.deepEqual(await callExport(pool, hostile, "ownRealmCodegen"), [2, "undefined"]);
  });

  test("host prototypes reachable through host objects cannot be patched", async () => {
    const results = (await callExport(pool, hostile, "pollute", [], { affinity: "p" })) as Record<
      string,
      string
    >;
    assert.equal(Object.keys(results).length, 11);
    for (const [name, result] of Object.entries(results)) assert.equal(result, "refused", name);
    const clean = target("org_evil", HOSTILE);
    assert.deepEqual(await callExport(pool, clean, "pollutionVisible", [], { affinity: "p" }), [
      null,
      "https://a.test/",
    ]);
  });

  test("host prototypes only objects lead to (iterators, internal streams) cannot be patched", async () => {
    const attacker = target("org_evil", HOSTILE);
    const victim = target("org_evil", HOSTILE);
    const at = { affinity: "hidden" };
    const results = (await callExport(pool, attacker, "patchHiddenPrototypes", [], at)) as Record<
      string,
      string
    >;
    assert.equal(Object.keys(results).length, 7);
    for (const [name, result] of Object.entries(results)) assert.equal(result, "refused", name);
    assert.equal(await callExport(pool, attacker, "stealHeaders", [], at), "refused");

    const seen = (await callExport(pool, victim, "hiddenPollutionVisible", [], at)) as Record<
      string,
      unknown
    >;
    for (const [name, value] of Object.entries(seen)) assert.equal(value, null, name);
    assert.equal(await callExport(pool, victim, "iterateHeaders", [], at), 1);
    assert.deepEqual(await callExport(pool, attacker, "stolenHeaders", [], at), []);
  });

  test("the prototype of host CryptoKeys cannot be patched for other versions' keys", async () => {
    const results = (await callExport(pool, hostile, "patchCryptoKeys", [], {
      affinity: "keys",
    })) as Record<string, string>;
    for (const [name, result] of Object.entries(results)) assert.equal(result, "refused", name);
    const other = target("org_evil", HOSTILE);
    assert.deepEqual(
      await callExport(pool, other, "cryptoKeyPollutionVisible", [], { affinity: "keys" }),
      [null, false, "refused"],
    );
  });
});
