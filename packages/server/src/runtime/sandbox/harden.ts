// Freezes the host-realm classes a context can reach. Machine code gets host objects (a Response,
// a URL) and through them host prototypes; frozen, they cannot be patched to run machine code
// inside the sandbox's own host code (fetch internals, the message loop). freeze-intrinsics.ts
// already froze the ECMAScript intrinsics (Object.prototype, Function.prototype, Promise, …);
// this covers the web classes Node defines on top, and the host prototypes only objects lead to.
// Each freezes only prototypes not frozen yet: the built-ins keep the members freeze-intrinsics.ts
// left as data, which an accessor here would slow for every context.
import { constants } from "node:os";
import util from "node:util";
import { isMap, isProxy } from "node:util/types";
import { errors as undiciErrors, FormData, Headers } from "undici";
import { nodeErrorSamples } from "./node-error-samples.js";

function freezeChain(start: object | null): void {
  for (let value = start; value !== null; value = Reflect.getPrototypeOf(value)) {
    Object.freeze(value);
  }
}

/** Calls `freeze` on each prototype of the chain from `start` that is not frozen yet. */
function freezeEachUnfrozen(start: object | null, freeze: (value: object) => void): void {
  for (let value = start; value !== null; value = Reflect.getPrototypeOf(value)) {
    if (!Object.isFrozen(value)) freeze(value);
  }
}

/**
 * freezeChain for prototypes whose `constructor` Node's own code overrides on the objects it
 * makes (`stream.constructor = ReadableStream`, for its internal stream classes). Frozen as they
 * are, that assignment would throw (the "override mistake"); as freeze-intrinsics.ts does for the
 * built-ins, `constructor` becomes an accessor whose setter gives the object its own property.
 */
function freezeChainAllowingOverrides(start: object | null): void {
  freezeEachUnfrozen(start, (value) => {
    allowOverride(value, "constructor");
    Object.freeze(value);
  });
}

/**
 * freezeChainAllowingOverrides for every writable member, not `constructor` alone: Node's own
 * classes (EventEmitter, streams) assign over inherited members all the time (`this._events = …`,
 * `this._read = options.read`).
 */
function freezeChainAllowingMemberOverrides(start: object | null): void {
  freezeEachUnfrozen(start, (value) => {
    for (const key of Reflect.ownKeys(value)) allowOverride(value, key);
    freezeAllButFixedPrimitives(value);
  });
}

/**
 * Object.freeze, except for members that can neither be made read-only nor accessors without
 * breaking Node: writable, non-configurable ones (EventEmitter.prototype[kCapture], a flag its
 * instances assign over). Only primitives are left so: a function or object among them would be
 * a way in, and the sandbox refuses to start rather than leave it.
 */
function freezeAllButFixedPrimitives(value: object): void {
  Object.preventExtensions(value);
  for (const key of Reflect.ownKeys(value)) {
    const descriptor = Reflect.getOwnPropertyDescriptor(value, key)!;
    if ("value" in descriptor && descriptor.writable === true && descriptor.configurable !== true) {
      const member: unknown = descriptor.value;
      if ((typeof member === "object" && member !== null) || typeof member === "function") {
        throw new TypeError(`a host prototype has a member that cannot be frozen: ${String(key)}`);
      }
      continue;
    }
    Reflect.defineProperty(
      value,
      key,
      "value" in descriptor ? { configurable: false, writable: false } : { configurable: false },
    );
  }
}

/** The member behind each getter allowOverride made, for hardenReachable to walk on to. */
const overriddenMembers = new WeakMap<object, unknown>();

function allowOverride(prototype: object, key: string | symbol): void {
  const descriptor = Reflect.getOwnPropertyDescriptor(prototype, key);
  if (
    descriptor === undefined ||
    !("value" in descriptor) ||
    descriptor.configurable !== true ||
    descriptor.writable !== true
  ) {
    return;
  }
  const member: unknown = descriptor.value;
  Reflect.defineProperty(prototype, key, {
    get: () => member,
    set(this: unknown, value: unknown) {
      if (this === prototype || typeof this !== "object" || this === null) {
        throw new TypeError(`Cannot assign to read only property '${String(key)}'`);
      }
      Reflect.defineProperty(this, key, {
        value,
        writable: true,
        enumerable: true,
        configurable: true,
      });
    },
    enumerable: descriptor.enumerable === true,
    configurable: false,
  });
  const { get, set } = Reflect.getOwnPropertyDescriptor(prototype, key)!;
  overriddenMembers.set(get!, member);
  // Machine code reaches both as the accessor's; they are the prototype's, for every version.
  Object.freeze(get);
  Object.freeze(set);
}

/**
 * Freezes, for the whole process, the prototype chains (and their constructors) of every host
 * object reachable from `roots` through own data properties, symbol-keyed ones included, and
 * every host function on the way (hardenFunction). Web classes Node implements on top of its own
 * keep their machinery in symbol-keyed members that machine code can read: a
 * CompressionStream's `[kHandle]` is a zlib stream, whose chain ends in
 * EventEmitter.prototype and whose buffers are Node Buffers. Left open, one patched
 * `EventEmitter.prototype.emit` is called by the sandbox's own message loop, and by `process`
 * itself, with them as `this`: machine code gets the process, its builtin modules and the
 * network, past the fetch guard.
 */
export function hardenReachable(roots: readonly unknown[]): void {
  const seen = new Set<object>();
  // Breadth first, so that each object is walked from its shortest path: met first at the depth
  // limit down a long path, it would be left unwalked for good (Writable, behind a CryptoKey).
  const queue: Array<{ value: object; depth: number }> = [];
  const reach = (value: unknown, depth: number): void => {
    if ((typeof value !== "object" && typeof value !== "function") || value === null) return;
    if (depth > 8 || seen.has(value) || isProxy(value)) return;
    seen.add(value);
    queue.push({ value, depth });
  };
  for (const root of roots) reach(root, 0);
  for (let at = 0; at < queue.length; at++) {
    const { value, depth } = queue[at]!;
    if (typeof value === "function") {
      hardenFunction(value);
      for (const member of lazyStatics(value)) reach(member, depth + 1);
    }
    for (let prototype = Reflect.getPrototypeOf(value); prototype !== null;) {
      if (typeof prototype === "function") {
        // A class's static side (Gzip's [[Prototype]] is Zlib): nothing assigns over it.
        freezeChain(prototype);
      } else if (!Object.isFrozen(prototype)) {
        const constructor = Reflect.getOwnPropertyDescriptor(prototype, "constructor");
        if (constructor !== undefined && "value" in constructor) {
          if (typeof constructor.value === "function") freezeChain(constructor.value as object);
        }
        freezeChainAllowingMemberOverrides(prototype);
      }
      reach(prototype, depth + 1);
      prototype = Reflect.getPrototypeOf(prototype);
    }
    for (const key of Reflect.ownKeys(value)) {
      const descriptor = Reflect.getOwnPropertyDescriptor(value, key);
      if (descriptor === undefined) continue;
      if ("value" in descriptor) reach(descriptor.value, depth + 1);
      else if (descriptor.get !== undefined && overriddenMembers.has(descriptor.get)) {
        // A member allowOverride turned into an accessor: a prototype's `constructor` is how
        // the walk gets from an object to its class and the class's statics.
        reach(overriddenMembers.get(descriptor.get), depth + 1);
      } else {
        reach(descriptor.get, depth + 1);
        reach(descriptor.set, depth + 1);
      }
    }
  }
}

/**
 * Freezes a host function machine code can reach, with the objects among its statics and its
 * `prototype` object. Node's classes reach one another through their statics: a zlib stream's
 * class inherits those of the legacy Stream, which are node:stream's exports (Writable,
 * PassThrough, `promises`, …). Left open, one version could patch Writable.prototype, or replace
 * it (Writable is a plain function, whose `prototype` is writable), and be handed every Writable
 * another version makes, with that version's callbacks, and so its realm, inside; or give a host
 * function a `Symbol.hasInstance` that host code's `instanceof` would call with its own objects.
 */
function hardenFunction(fn: object): void {
  for (const key of Reflect.ownKeys(fn)) {
    const descriptor = Reflect.getOwnPropertyDescriptor(fn, key)!;
    if (!("value" in descriptor)) continue;
    const member: unknown = descriptor.value;
    if (typeof member !== "object" || member === null || isProxy(member)) continue;
    // Instances assign over the members of a class's prototype; a static object is a module.
    if (key === "prototype") freezeChainAllowingMemberOverrides(member);
    else Object.freeze(member);
  }
  freezeChain(fn);
}

/**
 * The objects a host function's static getters answer: node:stream's `promises` and events'
 * EventEmitterAsyncResource are made on first read, which machine code can do as well as we can.
 * Each is frozen as a static of the function, then walked.
 */
function lazyStatics(fn: object): object[] {
  const members: object[] = [];
  for (const key of Reflect.ownKeys(fn)) {
    const descriptor = Reflect.getOwnPropertyDescriptor(fn, key)!;
    if (descriptor.get === undefined) continue;
    let member: unknown;
    try {
      member = Reflect.apply(descriptor.get, fn, []);
    } catch {
      continue;
    }
    if (typeof member === "function") members.push(member);
    else if (typeof member === "object" && member !== null && !isProxy(member)) {
      Object.freeze(member);
      members.push(member);
    }
  }
  return members;
}

/** Freezes a constructor, its prototype object, and both prototype chains. */
export function hardenClass(constructor: unknown): void {
  if (typeof constructor !== "function") return;
  freezeChain(constructor);
  const prototype: unknown = (constructor as { prototype?: unknown }).prototype;
  if (typeof prototype === "object" && prototype !== null) freezeChain(prototype);
}

/**
 * Freezes the prototype every CryptoKey of this process has: an internal class of Node's, set
 * between a key and CryptoKey.prototype, that no global leads to, so hardenClass misses it. Left
 * open, one version's code could patch it for every key of the process: give another version's
 * keys a clone hook that hands them over, or an `extractable` getter that lets Node's own checks
 * export a non-extractable key. Only a key leads to it, and keys are made asynchronously: the
 * sandbox makes one and waits for this before it reports ready.
 */
async function hardenCryptoKeys(): Promise<object> {
  const key = await crypto.subtle.importKey(
    "raw",
    new Uint8Array(16),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  freezeChain(Reflect.getPrototypeOf(key));
  return key;
}

/**
 * Freezes the host prototypes that no global leads to but objects machine code gets do, each one
 * for the whole process: the iterators of Headers, FormData and URLSearchParams, a ReadableStream's
 * async iterator, the internal stream classes of tee(), TransformStream and friends, and the
 * classes of errors a response's body can fail with after fetch resolved (undici's, and Node's for
 * a socket error such as ECONNRESET). Left open, one version could patch them for all: a `next`
 * on the Headers iterator sees every header another version iterates, its tokens included.
 * Errors a fetch rejects with are hardened on their way out (hardenThrown): Node's DNS and
 * connection errors have classes no import leads to. Runs before the sandbox reports ready.
 */
export async function hardenHostPrototypes(): Promise<void> {
  for (const value of Object.values(undiciErrors)) hardenClass(value);
  const samples: object[] = [
    new Headers().entries(),
    new FormData().entries(),
    new URLSearchParams().entries(),
    new ReadableStream().values(),
    new ReadableStream().tee()[0],
    new ReadableStream({ type: "bytes" }).tee()[0],
    new TransformStream().writable,
    socketError(),
    listenerRecord(),
  ];
  for (const sample of samples) freezeChainAllowingOverrides(Reflect.getPrototypeOf(sample));
  const key = await hardenCryptoKeys();
  // Asymmetric keys' Node KeyObjects have classes of their own (PrivateKeyObject, …).
  const pair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
    "sign",
    "verify",
  ])) as { privateKey: object; publicKey: object };
  hardenReachable([
    // The samples' classes too (InternalReadableStream, …), and what their statics lead to.
    ...samples,
    key,
    pair.privateKey,
    pair.publicKey,
    new Blob(["x"]),
    new CompressionStream("gzip"),
    new CompressionStream("deflate"),
    new CompressionStream("deflate-raw"),
    new DecompressionStream("gzip"),
    new DecompressionStream("deflate"),
    new DecompressionStream("deflate-raw"),
    new TextEncoderStream(),
    new TextDecoderStream(),
    // Encodings other than UTF-8 decode through an ICU converter, an object of a Node binding.
    new TextDecoder("utf-16le"),
    AbortSignal.timeout(1),
    // Node's error classes, each led to by its errors only, and the statics they lead to.
    ...(await nodeErrorSamples()),
    // util.inspect, which no object leads to: Node hands it to an object's `inspect.custom`
    // method when one of its error messages describes the object (`new Blob(x)` of one that is
    // not a sequence). Its settings are process-settings.ts's; this closes the rest of it.
    util.inspect,
  ]);
}

/**
 * The record an EventTarget keeps for each listener (Node's internal Listener class), which machine
 * code reaches through a target's symbol-keyed [kEvents] map. Every EventTarget of the process
 * shares its prototype, and Node's dispatch reads it (`once`, `weak`, `remove`) for every event:
 * left open, one version would be handed the listeners of all the others, functions of their
 * realms, and through them their globals. Without it, the sandbox refuses to start.
 */
function listenerRecord(): object {
  const target = new EventTarget();
  target.addEventListener("sample", () => {});
  const kEvents = Object.getOwnPropertySymbols(target).find((s) => s.description === "kEvents");
  const events: unknown = kEvents === undefined ? undefined : Reflect.get(target, kEvents);
  // A SafeMap: a Map whose prototype chain leaves Map.prototype out.
  const root: unknown = isMap(events) ? Map.prototype.get.call(events, "sample") : undefined;
  const record: unknown = (root as { next?: unknown } | undefined)?.next;
  if (typeof record !== "object" || record === null) {
    throw new Error("an EventTarget's listener records are not where the sandbox expects them");
  }
  return record;
}

/**
 * An error of the class a socket's failed read or write makes (ECONNRESET when a server drops a
 * response halfway). Node exports one maker of it, an old helper; without it, the sandbox refuses
 * to start rather than leave the class open.
 */
function socketError(): Error {
  const make = (util as unknown as { _errnoException?: (errno: number, syscall: string) => Error })
    ._errnoException;
  if (typeof make !== "function") throw new Error("node:util._errnoException is gone");
  return make(-constants.errno.ECONNRESET, "read");
}

/**
 * Freezes the prototypes of an error the host hands machine code, and of its causes (and an
 * AggregateError's errors): their classes are shared by every version of the process. Only host
 * errors: one of machine code's own (an abort reason) is left as it is, its realm its own.
 */
export function hardenThrown(value: unknown, depth = 0): void {
  if (depth > 8 || typeof value !== "object" || value === null || isProxy(value)) return;
  try {
    if (!(value instanceof Error)) return;
    freezeChainAllowingOverrides(Reflect.getPrototypeOf(value));
    const cause = Reflect.getOwnPropertyDescriptor(value, "cause");
    if (cause !== undefined && "value" in cause) hardenThrown(cause.value, depth + 1);
    const errors = Reflect.getOwnPropertyDescriptor(value, "errors");
    if (errors !== undefined && Array.isArray(errors.value)) {
      for (const error of errors.value as unknown[]) hardenThrown(error, depth + 1);
    }
  } catch {
    // Only a chain machine code built itself (a proxy in it) throws here; nothing of the host's
    // is left open by it, since the host's own chains hold no proxies.
  }
}
