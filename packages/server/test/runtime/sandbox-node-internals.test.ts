// Web classes Node implements with its own machinery keep it in symbol-keyed members machine code
// can read: a CompressionStream's [kHandle] is a zlib stream, an EventEmitter. Its prototypes are
// the ones the sandbox's own message loop and `process` use: patched, they hand machine code the
// process, and with it Node's modules and the network, past the fetch guard.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:net";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { SandboxPool } from "../../src/runtime/sandbox-pool.js";
import { callExport, memoryLogger, target, TEST_ADAPTER } from "./sandbox-helpers.js";

const ESCAPE = `
export default { id: "escape" };
const caught = new Set();

// From a CompressionStream down to EventEmitter.prototype, and the other Node prototypes there.
export function patchNodeInternals() {
  const stream = new CompressionStream("gzip");
  const handle = stream[Object.getOwnPropertySymbols(stream).find((s) => s.description === "kHandle")];
  const chain = [];
  for (let p = Object.getPrototypeOf(handle); p !== Object.prototype && p; p = Object.getPrototypeOf(p)) chain.push(p);
  chain.push(Object.getPrototypeOf(handle._readableState), Object.getPrototypeOf(handle._outBuffer));
  const emitter = chain.find((p) => Object.hasOwn(p, "emit") && Object.hasOwn(p, "_events"));
  const result = { emit: "refused", other: [] };
  const emit = emitter.emit;
  try {
    emitter.emit = function (...args) { caught.add(this); return Reflect.apply(emit, this, args); };
    result.emit = "patched";
  } catch {}
  for (const p of chain) {
    try { p.polluted = "yes"; result.other.push(p.constructor.name); } catch {}
  }
  // Something for process to emit (unhandledRejection), in case the patch took.
  Promise.reject(new Error("bait"));
  return result;
}

export async function reachedProcess(port) {
  await new Promise((resolve) => setTimeout(resolve, 100));
  const process = [...caught].find((o) => typeof o.getBuiltinModule === "function");
  if (process === undefined) return null;
  const net = process.getBuiltinModule("net");
  return await new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.on("error", (error) => resolve("error " + error.code));
    socket.on("connect", () => socket.end("hello from the sandbox\\n", () => resolve("connected")));
  });
}

// The web classes offered as globals are frozen plainly: an instance cannot take over one of
// their methods, which host code may call on it by name (an abort dispatches through
// signal.dispatchEvent).
export function overrideInstanceMembers() {
  const tries = {
    blobText: () => { new Blob(["x"]).text = () => "mine"; },
    signalDispatch: () => { new AbortController().signal.dispatchEvent = () => true; },
    targetAdd: () => { new EventTarget().addEventListener = () => {}; },
    streamTee: () => { new ReadableStream().tee = () => []; },
  };
  const taken = [];
  for (const [name, attempt] of Object.entries(tries)) {
    try { attempt(); taken.push(name); } catch {}
  }
  return taken;
}

export async function compress() {
  const stream = new Blob(["hello"]).stream().pipeThrough(new CompressionStream("gzip"));
  const back = stream.pipeThrough(new DecompressionStream("gzip"));
  return await new Response(back).text();
}
`;

let pool: SandboxPool;
let server: Server;
const received: string[] = [];

before(async () => {
  pool = new SandboxPool({ adapterPath: TEST_ADAPTER, size: 1, logger: memoryLogger() });
  server = createServer((socket) => socket.on("data", (data) => received.push(String(data))));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
});
after(async () => {
  await pool.close();
  await new Promise((resolve) => server.close(resolve));
});

test("Node's prototypes behind web classes cannot be patched to reach the process", async () => {
  const port = (server.address() as AddressInfo).port;
  const at = target("org_evil", ESCAPE);
  const options = { affinity: "escape" };
  const patched = await callExport(pool, at, "patchNodeInternals", [], options);
  const reached = await callExport(pool, at, "reachedProcess", [port], options);
  assert.deepEqual(
    { patched, reached, received },
    { patched: { emit: "refused", other: [] }, reached: null, received: [] },
  );
  assert.deepEqual(await callExport(pool, at, "overrideInstanceMembers", [], options), []);
  // The streams still work, frozen.
  assert.equal(await callExport(pool, at, "compress", [], options), "hello");
});
