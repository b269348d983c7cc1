// Host code calls machine code back, and hands it host objects as it does: a stream's controller,
// an event, an options bag, a chunk, an error, util.inspect. No global leads to the objects only a
// callback is given, so the walk from the globals (sandbox-shared-host-objects.test.ts) cannot
// meet them: util.inspect, the third argument of an `inspect.custom` method, was found open that
// way. Here machine code defines every kind of callback host code makes of it (the methods of
// underlying sources, sinks and transformers, queuing strategies' `size`, listeners, thenables,
// a promise's species, conversions, inspect.custom, Error.prepareStackTrace, timers), and hands
// host code objects that are proxies recording every trap host code runs on them (the options
// bags of fetch, streams and listeners, iterables, signals that only look like signals). It
// keeps each `this`, argument and trap argument it is given, and each error thrown at it from
// inside a callback, and walks them as the other test walks the globals: of what is shared by
// the whole process, no prototype, class or object may be left open.
//
// When it was written, everything it met was already closed (harden.ts, node-error-samples.ts):
// it guards that. Some of it only a callback leads to: the RangeError class of
// ERR_INVALID_ARG_VALUE, thrown by a BYOB request's respond() inside a pull, is frozen only
// because node-error-samples.ts provokes one; without that sample, this test alone fails.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { SandboxPool } from "../../src/runtime/sandbox-pool.js";
import { SHARED_HOST_OBJECT_WALK } from "./sandbox-host-object-walk.js";
import { callExport, memoryLogger, target, TEST_ADAPTER } from "./sandbox-helpers.js";

const PROBE = `${SHARED_HOST_OBJECT_WALK}
export default { id: "callback-probe" };

let recording = false;
let kept = {};
let calls = 0;
const called = new Set();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function keep(name, value) {
  if (!recording) return;
  called.add(name);
  kept[name + "#" + calls++] = value;
}

// A function that keeps the \`this\` and the arguments of every call host code makes of it, then
// answers what \`answer\` (a function run with them, or a value) gives.
function spy(name, answer) {
  return function (...args) {
    keep(name, this);
    args.forEach((arg, i) => keep(name + ".arg" + i, arg));
    return typeof answer === "function" ? Reflect.apply(answer, this, args) : answer;
  };
}

// \`target\` behind a proxy that keeps what each trap host code runs on it is given (a receiver,
// a value assigned, a descriptor defined, a call's \`this\` and arguments), the target aside.
function watched(name, target) {
  const handler = {};
  for (const trap of Object.getOwnPropertyNames(Reflect)) {
    handler[trap] = (...args) => {
      args.slice(1).forEach((arg, i) => keep(name + "." + trap + ".arg" + (i + 1), arg));
      return Reflect[trap](...args);
    };
  }
  return new Proxy(target, handler);
}

async function attempt(name, run) {
  try {
    await run();
  } catch (error) {
    keep(name + ".thrown", error);
  }
}

// An object whose inspect.custom method keeps what util.inspect calls it with.
function inspectBait(name) {
  const bait = Object.create(null);
  bait[Symbol.for("nodejs.util.inspect.custom")] = spy(name, "bait");
  return bait;
}

function convertible(name) {
  return watched(name, {
    toString: spy(name + ".toString", "1"),
    valueOf: spy(name + ".valueOf", 1),
    [Symbol.toPrimitive]: spy(name + ".toPrimitive", "1"),
    toJSON: spy(name + ".toJSON", "1"),
  });
}

// V8 makes the resolving functions it hands a thenable's \`then\` in that function's realm, so
// these are the context's own; kept so that a change there shows.
function thenable(name) {
  return watched(name, { then: spy(name + ".then", (resolve) => resolve()) });
}

// A promise of the context whose constructor names a species: Node's streams chain their own
// reactions on a promise a callback answers with the host's own \`then\`, which constructs the
// promise it returns with that species, giving it the host's executor.
function speciesPromise(name) {
  const promise = Promise.resolve();
  function Species(executor) {
    keep(name + ".species", this);
    keep(name + ".executor", executor);
    return new Promise((resolve, reject) => executor(spy(name + ".resolve", resolve), spy(name + ".reject", reject)));
  }
  Object.defineProperty(promise, "constructor", { value: { [Symbol.species]: Species } });
  return promise;
}

function sink(name) {
  return new WritableStream(
    watched(name, {
      start: spy(name + ".start"),
      write: spy(name + ".write"),
      close: spy(name + ".close"),
      abort: spy(name + ".abort"),
    }),
  );
}

function source(name, chunks) {
  return new ReadableStream(
    watched(name, {
      start: spy(name + ".start"),
      pull: spy(name + ".pull", (controller) => {
        if (chunks.length > 0) controller.enqueue(chunks.shift());
        else controller.close();
      }),
      cancel: spy(name + ".cancel"),
    }),
  );
}

// A signal in all but name: Node's validators take any object with an \`aborted\` member.
function signalLookalike(name) {
  return watched(name, {
    aborted: false,
    reason: undefined,
    addEventListener: spy(name + ".addEventListener"),
    removeEventListener: spy(name + ".removeEventListener"),
  });
}

// A real signal (fetch takes no look-alike) whose own addEventListener keeps what it is given.
function listenedSignal(name) {
  const signal = new AbortController().signal;
  Object.defineProperty(signal, "addEventListener", {
    value: spy(name + ".addEventListener", (...args) => EventTarget.prototype.addEventListener.apply(signal, args)),
  });
  return signal;
}

function asyncIterable(name, values) {
  return watched(name, {
    [Symbol.asyncIterator]: spy(name + ".iterator", () =>
      watched(name + ".iterator", {
        next: spy(name + ".next", () => Promise.resolve(values.length ? { value: values.shift(), done: false } : { done: true })),
        return: spy(name + ".return", () => Promise.resolve({ done: true })),
      }),
    ),
  });
}

const bytes = (...values) => new Uint8Array(values);

const SCENARIOS = {
  // Node describes an object in its error messages with util.inspect, which calls the object's
  // inspect.custom method (depth, options, inspect).
  async inspectCustom() {
    const misuses = {
      blob: (bait) => new Blob(bait),
      decode: (bait) => new TextDecoder().decode(bait),
      signalAny: (bait) => AbortSignal.any(bait),
      timeout: (bait) => AbortSignal.timeout(bait),
      compression: (bait) => new CompressionStream(bait),
      pipeTo: (bait) => new ReadableStream().pipeTo(bait),
      reader: (bait) => new ReadableStream().getReader(bait),
      event: (bait) => new Event("x", bait),
      listener: (bait) => new EventTarget().addEventListener("x", () => {}, { signal: bait }),
      random: (bait) => crypto.getRandomValues(bait),
      digest: (bait) => crypto.subtle.digest("SHA-256", bait),
      nested: (bait) => new Blob([[bait]]),
    };
    for (const [name, misuse] of Object.entries(misuses)) {
      await attempt("inspect." + name, () => misuse(inspectBait("inspect." + name)));
    }
  },

  // Conversions host code makes of machine values: toString, valueOf, toPrimitive, toJSON.
  async conversions() {
    const uses = {
      json: (value) => Response.json({ value }),
      url: (value) => new URL(value, "https://a.test"),
      blobPart: (value) => new Blob([value]),
      encode: (value) => new TextEncoder().encode(value),
      search: (value) => new URLSearchParams({ a: value }),
      header: (value) => new Headers({ a: value }),
      btoa: (value) => btoa(value),
      timeout: (value) => AbortSignal.timeout(value),
      status: (value) => new Response(null, { status: value }),
      event: (value) => new Event(value),
      hmacLength: (value) =>
        crypto.subtle.generateKey({ name: "HMAC", hash: "SHA-256", length: value }, false, ["sign"]),
      clone: (value) => structuredClone({ get value() { return value; } }),
    };
    for (const [name, use] of Object.entries(uses)) {
      await attempt("convert." + name, () => use(convertible("convert." + name)));
    }
  },

  // Thenables host code resolves a promise with, and so calls then(resolve, reject) of.
  async thenables() {
    await new ReadableStream({ start: () => thenable("then.start") }).getReader().cancel();
    const reader = new ReadableStream({ pull: () => thenable("then.pull") }).getReader();
    await Promise.race([reader.read(), sleep(20)]);
    await reader.cancel();
    const writer = new WritableStream({ write: () => thenable("then.write") }).getWriter();
    await Promise.race([writer.write("x"), sleep(20)]);
    const transform = new TransformStream({ transform: () => thenable("then.transform") });
    const read = transform.readable.getReader().read();
    await Promise.race([transform.writable.getWriter().write("x"), sleep(20)]);
    await Promise.race([read, sleep(20)]);
    await new Promise((resolve) => queueMicrotask(spy("microtask", resolve)));
  },

  async species() {
    const sourceReader = new ReadableStream({
      start: () => speciesPromise("species.start"),
      pull: (controller) => { controller.enqueue("a"); return speciesPromise("species.pull"); },
      cancel: () => speciesPromise("species.cancel"),
    }).getReader();
    await sourceReader.read();
    await sourceReader.cancel("stop");
    const writer = new WritableStream({
      write: () => speciesPromise("species.write"),
      close: () => speciesPromise("species.close"),
    }).getWriter();
    await writer.write("a");
    await writer.close();
    await new WritableStream({ abort: () => speciesPromise("species.abort") }).getWriter().abort("stop");
    const transform = new TransformStream({
      transform: (chunk, controller) => { controller.enqueue(chunk); return speciesPromise("species.transform"); },
      flush: () => speciesPromise("species.flush"),
    });
    const done = new Response(transform.readable).text();
    const transformWriter = transform.writable.getWriter();
    await transformWriter.write(bytes(1));
    await transformWriter.close();
    await done;
  },

  async readable() {
    const stream = new ReadableStream(
      watched("source", {
        start: spy("source.start", (controller) => controller.enqueue("a")),
        pull: spy("source.pull", (controller) => controller.enqueue("b")),
        cancel: spy("source.cancel"),
      }),
      watched("readStrategy", { highWaterMark: 2, size: spy("readStrategy.size", () => 1) }),
    );
    const reader = stream.getReader();
    await reader.read();
    await reader.read();
    await reader.cancel("done");
    await attempt("source.misuse", () =>
      new ReadableStream({ start: (controller) => { controller.close(); controller.enqueue("x"); } }),
    );
  },

  async byteSource() {
    const pull = (name) => spy(name, (controller) => {
      const request = controller.byobRequest;
      keep(name + ".byobRequest", request);
      keep(name + ".view", request?.view);
      if (request) {
        request.view[0] = 1;
        request.respond(1);
      } else controller.enqueue(bytes(1));
    });
    const make = (name) =>
      new ReadableStream(
        watched(name, {
          type: "bytes",
          autoAllocateChunkSize: 16,
          start: spy(name + ".start"),
          pull: pull(name + ".pull"),
          cancel: spy(name + ".cancel"),
        }),
      );
    const reader = make("byteSource").getReader();
    await reader.read();
    await reader.cancel("done");
    const byob = make("byobSource").getReader({ mode: "byob" });
    await byob.read(new Uint8Array(4));
    await byob.cancel("done");
    await attempt("byteSource.misuse", () =>
      new ReadableStream({ type: "bytes", start: (controller) => controller.enqueue("x") }),
    );
    await attempt("byteSource.respond", async () => {
      await new ReadableStream({
        type: "bytes",
        autoAllocateChunkSize: 4,
        pull: (controller) => {
          try {
            controller.byobRequest.respond(1000);
          } catch (error) {
            keep("byteSource.respond.thrown", error);
            controller.close();
          }
        },
      }).getReader().read();
    });
  },

  async writable() {
    const make = (name) =>
      new WritableStream(
        watched(name, {
          start: spy(name + ".start"),
          write: spy(name + ".write"),
          close: spy(name + ".close"),
          abort: spy(name + ".abort"),
        }),
        watched(name + "Strategy", { highWaterMark: 1, size: spy(name + "Strategy.size", () => 1) }),
      );
    const writer = make("sink").getWriter();
    await writer.write("a");
    await writer.close();
    await make("abortedSink").getWriter().abort("stop");
  },

  async transform() {
    const make = (name) =>
      new TransformStream(
        watched(name, {
          start: spy(name + ".start"),
          transform: spy(name + ".transform", (chunk, controller) => controller.enqueue(chunk)),
          flush: spy(name + ".flush"),
          cancel: spy(name + ".cancel"),
        }),
        watched(name + ".writableStrategy", { highWaterMark: 1, size: spy(name + ".writableSize", () => 1) }),
        watched(name + ".readableStrategy", { highWaterMark: 1, size: spy(name + ".readableSize", () => 1) }),
      );
    const transform = make("transformer");
    const done = new Response(transform.readable).text();
    const writer = transform.writable.getWriter();
    await writer.write(bytes(1));
    await writer.close();
    await done;
    await make("cancelledTransformer").readable.cancel("stop");
  },

  // Chunks host streams write to machine code's sinks.
  async hostChunks() {
    const blob = () => new Blob(["hello"]).stream();
    const gzip = await new Response(blob().pipeThrough(new CompressionStream("gzip"))).arrayBuffer();
    const form = new FormData();
    form.append("file", new Blob(["x"]), "x.txt");
    const pipes = {
      blob: () => blob(),
      gzip: () => blob().pipeThrough(new CompressionStream("deflate")),
      gunzip: () => new Blob([gzip]).stream().pipeThrough(new DecompressionStream("gzip")),
      text: () => blob().pipeThrough(new TextDecoderStream()).pipeThrough(new TextEncoderStream()),
      response: () => new Response("x").body,
      form: () => new Response(form).body,
      request: () => new Request("https://a.test", { method: "POST", body: "x" }).body,
      tee: () => blob().tee()[1],
    };
    for (const [name, pipe] of Object.entries(pipes)) {
      await attempt("chunks." + name, () => pipe().pipeTo(sink("chunks." + name)));
    }
    await attempt("chunks.fetch", async () => (await fetch("data:text/plain,x")).body.pipeTo(sink("chunks.fetch")));
  },

  // Errors host streams fail machine code's sources and sinks with (cancel and abort reasons).
  async hostErrors() {
    const failures = {
      badGzip: () => new Blob([bytes(1, 2, 3)]).stream().pipeThrough(new DecompressionStream("gzip")),
      badText: () => new Blob([bytes(255)]).stream().pipeThrough(new TextDecoderStream("utf-8", { fatal: true })),
      notBytes: () => source("notBytes.source", [{}]).pipeThrough(new CompressionStream("gzip")),
      notBytesDecode: () => source("notBytesDecode.source", [1]).pipeThrough(new DecompressionStream("gzip")),
      notText: () => source("notText.source", [bytes(1)]).pipeThrough(new TextDecoderStream()),
      gzipCancelled: () => {
        const readable = new Blob(["x"]).stream().pipeThrough(new CompressionStream("gzip"));
        readable.cancel("stop");
        return readable;
      },
    };
    for (const [name, fail] of Object.entries(failures)) {
      await attempt("errors." + name, () => Promise.race([fail().pipeTo(sink("errors." + name)), sleep(50)]));
    }
    const signals = {
      aborted: () => AbortSignal.abort(),
      timeout: () => AbortSignal.timeout(1),
      lookalike: () => signalLookalike("pipeSignal"),
    };
    for (const [name, signal] of Object.entries(signals)) {
      const pipe = source("pipe." + name, ["a"]).pipeTo(sink("pipe." + name), { signal: signal() });
      await attempt("pipe." + name, () => Promise.race([pipe, sleep(30)]));
    }
  },

  async events() {
    const target = new EventTarget();
    target.addEventListener(
      "x",
      watched("listener", { handleEvent: spy("listener.handleEvent") }),
      watched("listenerOptions", { once: false, passive: false, capture: false }),
    );
    target.addEventListener("x", spy("listenerFunction"));
    target.addEventListener("x", spy("signalledListener"), { signal: signalLookalike("listenerSignal") });
    target.dispatchEvent(new Event("x"));
    const controller = new AbortController();
    controller.signal.onabort = spy("onabort");
    controller.signal.addEventListener("abort", spy("abortListener"));
    const any = AbortSignal.any([controller.signal]);
    any.addEventListener("abort", spy("anyListener"));
    controller.abort();
    const timeout = AbortSignal.timeout(1);
    timeout.onabort = spy("timeout.onabort");
    await sleep(20);
    await attempt("anyOfIterable", () => AbortSignal.any(watched("anySignals", [AbortSignal.abort()])));
  },

  // What fetch, Request and Response read of their arguments, and call back.
  async fetchInit() {
    await attempt("fetch.data", () =>
      fetch(
        "data:text/plain,x",
        watched("fetchInit", { method: "GET", headers: watched("fetchHeaders", { a: "b" }), redirect: "follow", signal: listenedSignal("fetchSignal") }),
      ),
    );
    await attempt("request.stream", () =>
      new Request("https://a.test", watched("requestInit", { method: "POST", body: source("requestBody", [bytes(1)]), duplex: "half", headers: [["a", "b"]], signal: listenedSignal("requestSignal") })).text(),
    );
    await attempt("response.iterable", () => new Response(asyncIterable("responseBody", ["a"])).text());
    await attempt("response.init", () =>
      new Response(source("responseStream", [bytes(1)]), watched("responseInit", { status: 200, statusText: "ok", headers: watched("responseHeaders", [["a", "b"]]) })).arrayBuffer(),
    );
    await attempt("fetch.refused", () =>
      fetch("http://127.0.0.1:1/", { method: "POST", body: source("refusedBody", [bytes(1)]), duplex: "half" }),
    );
    const iterable = ReadableStream.from?.(asyncIterable("fromIterable", ["a"]));
    if (iterable) await attempt("from", () => iterable.pipeTo(sink("fromSink")));
  },

  async crypto() {
    await attempt("subtle.digest", () => crypto.subtle.digest(watched("digestAlgorithm", { name: "SHA-256" }), bytes(1)));
    await attempt("subtle.importKey", () =>
      crypto.subtle.importKey(
        "raw",
        new Uint8Array(16),
        watched("hmacAlgorithm", { name: "HMAC", hash: watched("hmacHash", { name: "SHA-256" }) }),
        false,
        watched("usages", ["sign"]),
      ),
    );
    await attempt("subtle.unknown", () => crypto.subtle.digest(watched("unknownAlgorithm", { name: "nope" }), bytes(1)));
  },

  // Iterables and option bags host constructors read.
  async iterables() {
    const uses = {
      blobParts: () => new Blob(watched("blobParts", ["a", bytes(1)]), watched("blobOptions", { type: "a", endings: "native" })),
      fileParts: () => new File(watched("fileParts", ["a"]), "x", watched("fileOptions", { lastModified: 1 })),
      searchPairs: () => new URLSearchParams(watched("searchPairs", [watched("searchPair", ["a", "b"])])),
      searchRecord: () => new URLSearchParams(watched("searchRecord", { a: "b" })),
      headerPairs: () => new Headers(watched("headerPairs", [watched("headerPair", ["a", "b"])])),
      decoderOptions: () => new TextDecoder("utf-8", watched("decoderOptions", { fatal: false })),
      decodeOptions: () => new TextDecoder().decode(bytes(1), watched("decodeOptions", { stream: true })),
      eventInit: () => new Event("x", watched("eventInit", { bubbles: true })),
      readerOptions: () => new ReadableStream().getReader(watched("readerOptions", { mode: undefined })),
      pipeOptions: () => new ReadableStream().pipeThrough(new TransformStream(), watched("pipeOptions", { preventClose: true })),
      cloneOptions: () => structuredClone(1, watched("cloneOptions", { transfer: watched("transfer", []) })),
    };
    for (const [name, use] of Object.entries(uses)) await attempt("iterables." + name, use);
  },

  async timers() {
    keep("setTimeout.id", setTimeout(spy("setTimeout.callback"), 0, "a"));
    const interval = setInterval(spy("setInterval.callback"), 0, "a");
    keep("setInterval.id", interval);
    await sleep(10);
    clearInterval(interval);
  },

  // Node calls the context's Error.prepareStackTrace with the call sites of an error's stack, and
  // those of host code's frames are among them when machine code was called from host code.
  async stackTraces() {
    const original = Error.prepareStackTrace;
    Error.prepareStackTrace = spy("prepareStackTrace", (error, sites) => {
      for (const site of sites) {
        keep("callSite.this", site.getThis?.());
        keep("callSite.function", site.getFunction?.());
      }
      return "stack";
    });
    try {
      void new Error("x").stack;
      new ReadableStream({ start: () => void new Error("in a callback").stack });
      new EventTarget().addEventListener("x", () => {}, {
        get once() { return void new Error("in a getter").stack; },
      });
    } finally {
      Error.prepareStackTrace = original;
    }
  },

  // The console formats without calling inspect.custom or getters; kept to hold it to that.
  async console() {
    console.log(inspectBait("console.inspect"), watched("console.logged", { a: 1 }));
    console.log(Object.create(watched("console.prototype", {})));
  },
};

async function handedOut() {
  kept = {};
  recording = true;
  for (const [name, scenario] of Object.entries(SCENARIOS)) {
    await attempt(name, () => Promise.race([scenario(), sleep(5000)]));
  }
  await sleep(50);
  recording = false;
  return kept;
}

export async function openHostObjectsHandedToCallbacks() {
  const result = await findOpenSharedHostObjects(handedOut);
  return { ...result, called: [...called] };
}
`;

let pool: SandboxPool;

before(() => {
  pool = new SandboxPool({ adapterPath: TEST_ADAPTER, size: 1, logger: memoryLogger() });
});
after(() => pool.close());

// Callbacks each scenario must have been called back with (or errors thrown at it): without
// them, a clean walk would prove nothing. One or two of each kind.
const EXPECTED_CALLS = [
  "inspect.blob.arg1",
  "inspect.blob.arg2",
  "convert.json.toJSON",
  "then.start.then.arg0",
  "species.write.executor",
  "source.start.arg0",
  "readStrategy.size.arg0",
  "byteSource.pull.byobRequest",
  "byteSource.respond.thrown",
  "sink.write.arg1",
  "transformer.transform.arg1",
  "chunks.gunzip.write.arg0",
  "errors.badGzip.abort.arg0",
  "pipe.aborted.abort.arg0",
  "pipeSignal.addEventListener.arg1",
  "listener.handleEvent.arg0",
  "listenerSignal.addEventListener.arg2",
  "onabort.arg0",
  "timeout.onabort.arg0",
  "fetchSignal.addEventListener.arg1",
  "requestBody.pull.arg0",
  "responseBody.next",
  "fromIterable.next",
  "digestAlgorithm.get.arg1",
  "searchPair.get.arg1",
  "setTimeout.callback.arg0",
  "prepareStackTrace.arg1",
];

test("no host object handed to machine code's callbacks is shared and left open to patching", async () => {
  const probe = target("org_evil", PROBE);
  const result = (await callExport(pool, probe, "openHostObjectsHandedToCallbacks", [], {
    timeoutMs: 60_000,
  })) as { walked: number; open: string[]; called: string[] };
  assert.deepEqual(
    EXPECTED_CALLS.filter((name) => !result.called.includes(name)),
    [],
  );
  // From the callbacks' arguments the walk reaches Node's internals, or it proves nothing.
  assert.ok(result.walked > 1000, `walked ${result.walked}`);
  assert.deepEqual(result.open, []);
});
