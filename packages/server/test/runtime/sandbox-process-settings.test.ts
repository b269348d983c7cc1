// Some host settings are Node's, once for the whole process, and machine code reaches them: an
// accessor with a setter (EventEmitter.defaultMaxListeners, captureRejections) or a function that
// sets a default (Stream.setDefaultHighWaterMark, events.setMaxListeners without targets) works on
// a frozen object, and util.inspect, which Node hands to an object's `inspect.custom` method, has
// defaults of its own. One version changing them would change them for every other version of its
// process: its emitters, its streams' buffering, the error messages Node gives it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { versionsSharingAProcess } from "./sandbox-helpers.js";

// How either version reaches the host's settings, and what a version observes of them.
const REACH = `
const symbolNamed = (object, name) => Object.getOwnPropertySymbols(object).find((s) => s.description === name);

function zlibStream() {
  const stream = new CompressionStream("gzip");
  return stream[symbolNamed(stream, "kHandle")];
}

function host() {
  const handle = zlibStream();
  const Stream = handle.constructor.Stream;
  let inspect;
  const bait = Object.create(null);
  bait[Symbol.for("nodejs.util.inspect.custom")] = (depth, options, hostInspect) => {
    inspect = hostInspect;
    return "bait";
  };
  try { new Blob(bait); } catch {}
  let error;
  try { new Blob(1); } catch (thrown) { error = thrown; }
  let prototype = Object.getPrototypeOf(error);
  while (prototype.constructor.name !== "Error") prototype = Object.getPrototypeOf(prototype);
  return {
    EventEmitter: handle.constructor.EventEmitter,
    kCapture: symbolNamed(handle, "kCapture"),
    Stream,
    Buffer: handle._outBuffer.constructor,
    HostError: prototype.constructor,
    inspect,
  };
}

// Whether an emitter turns a rejected async listener into an 'error' event.
async function capturesRejections(emitter) {
  let captured = false;
  emitter.on("error", () => { captured = true; });
  emitter.on("event", async () => { throw new Error("rejected"); });
  emitter.emit("event");
  await new Promise((resolve) => setTimeout(resolve, 20));
  return captured;
}

export async function observe() {
  const { EventEmitter, kCapture, Stream, Buffer, HostError, inspect } = host();
  // Setting the limit of given emitters is left to everyone.
  const limited = new EventEmitter();
  EventEmitter.setMaxListeners(3, limited);
  return {
    emitterMaxListeners: new EventEmitter().getMaxListeners(),
    limitedMaxListeners: limited.getMaxListeners(),
    zlibStreamMaxListeners: zlibStream().getMaxListeners(),
    emitterCaptures: await capturesRejections(new EventEmitter()),
    zlibStreamCaptures: zlibStream()[kCapture],
    writableHighWaterMark: new Stream.Writable().writableHighWaterMark,
    objectHighWaterMark: new Stream.Readable({ objectMode: true }).readableHighWaterMark,
    inspectDefaults: { ...inspect.defaultOptions },
    inspected: inspect({ a: { b: { c: { d: "deep" } } }, list: [1, 2, 3] }),
    inspectCustom: String(inspect.custom),
    red: inspect.colors.red,
    stringStyle: inspect.styles.string,
    stackTraceLimit: HostError.stackTraceLimit,
    bufferPoolSize: Buffer.poolSize,
    smallBufferMemory: Buffer.from("hello").buffer.byteLength,
  };
}
`;

const VICTIM = `
export default { id: "victim" };
${REACH}
`;

const ATTACKER = `
export default { id: "attacker" };
${REACH}

export function changeProcessSettings() {
  const { EventEmitter, kCapture, Stream, Buffer, HostError, inspect } = host();
  const tries = {
    defaultMaxListeners: () => { EventEmitter.defaultMaxListeners = 1; },
    setMaxListenersDefault: () => { EventEmitter.setMaxListeners(2); },
    captureRejections: () => { EventEmitter.captureRejections = true; },
    captureRejectionsFlag: () => { EventEmitter.prototype[kCapture] = true; },
    highWaterMark: () => { Stream.setDefaultHighWaterMark(false, 1); },
    objectHighWaterMark: () => { Stream.Readable.setDefaultHighWaterMark(true, 1); },
    inspectDefaultOptions: () => { inspect.defaultOptions = { depth: 0, maxStringLength: 1 }; },
    inspectDefaultOption: () => { inspect.defaultOptions.breakLength = 1; },
    inspectCustom: () => { inspect.custom = Symbol("mine"); },
    inspectColors: () => { inspect.colors.red[0] = 0; },
    inspectStyles: () => { inspect.styles.string = "red"; },
    inspectColorTable: () => { inspect.colors = { ...inspect.colors, red: [0, 39] }; },
    inspectStyleTable: () => { inspect.styles = { ...inspect.styles, string: "red" }; },
    stackTraceLimit: () => { HostError.stackTraceLimit = 0; },
    bufferPoolSize: () => { Buffer.poolSize = 8192; },
  };
  const taken = [];
  for (const [name, attempt] of Object.entries(tries)) {
    try { attempt(); taken.push(name); } catch {}
  }
  return taken;
}
`;

const { attacker, victim } = versionsSharingAProcess(ATTACKER, VICTIM);

test("one version cannot change the process-wide settings of Node another version's code runs with", async () => {
  const before = (await victim("observe")) as Record<string, unknown>;
  // What the sandbox runs with, so that an unchanged value after the attack means something.
  assert.deepEqual(
    {
      emitterCaptures: before.emitterCaptures,
      bufferPoolSize: before.bufferPoolSize,
      smallBufferMemory: before.smallBufferMemory,
      limitedMaxListeners: before.limitedMaxListeners,
    },
    { emitterCaptures: false, bufferPoolSize: 0, smallBufferMemory: 5, limitedMaxListeners: 3 },
  );
  const taken = await attacker("changeProcessSettings");
  const after = await victim("observe");
  // Node defines these setters for good; what they set no longer reaches another's emitters.
  const unremovable = ["defaultMaxListeners", "captureRejections", "captureRejectionsFlag"];
  assert.deepEqual({ taken, after }, { taken: unremovable, after: before });
});
