// Settings Node keeps once for the whole process, which machine code can reach and which freezing
// does not fix: an accessor's setter, or a function whose job is to change a default, still works
// on a frozen object, since what it changes lives in Node's modules, not on the object. Every
// version of a sandbox process would see one version's change: the listener limit of its emitters,
// whether they turn a rejected async listener into an 'error' (its zlib streams then fail where
// they would not), the buffering of every stream made afterwards (fetch bodies, compression
// streams), and util.inspect's defaults, which shape the error messages Node gives it and the
// sandbox's console output. Each is fixed here at the value the sandbox runs with. Machine code
// reaches EventEmitter and Stream through a CompressionStream's zlib stream (harden.ts), and
// util.inspect as the third argument Node passes to an `inspect.custom` method when one of its
// error messages describes an object machine code gave it.
import { EventEmitter } from "node:events";
import { Stream } from "node:stream";
import { inspect } from "node:util";

/**
 * Fixes the process-wide settings machine code can reach. Called before harden.ts freezes the
 * objects that carry them: frozen, their functions can no longer be replaced.
 */
export function lockProcessSettings(): void {
  lockEmitterDefaults();
  refuse(Stream, "setDefaultHighWaterMark", "it sets the buffering of every stream of the process");
  lockInspectDefaults();
}

/**
 * EventEmitter.defaultMaxListeners and EventEmitter.captureRejections are accessors Node defines
 * for good (not configurable), so their setters stay, and what they set cannot be fixed where it
 * is kept: the default limit is a variable of Node's events module, and the capture flag a
 * writable member of EventEmitter.prototype that every emitter assigns its own copy over (read-only,
 * it would make every `new EventEmitter()` throw), which machine code can also set directly.
 * Instead every emitter made after this takes the sandbox's values, not theirs: Node's
 * EventEmitter.init, which each emitter's constructor looks up and calls, is wrapped to give an
 * emitter its own limit and flag (Node reads the default limit only for an emitter without one).
 * Left to the setters: the limit of an EventTarget (an AbortSignal) made afterwards, which Node
 * copies from the default as it makes one, where nothing can step in, and of the emitters made
 * before this runs (the process's own stdin and output socket), which read the default whenever
 * they check. A limit only decides when Node warns of a listener leak, on the sandbox's stderr,
 * so one version can at most make those warnings appear for another's signals, or keep them from
 * appearing.
 */
function lockEmitterDefaults(): void {
  const prototype = EventEmitter.prototype as unknown as Record<symbol, unknown>;
  const kCapture = Object.getOwnPropertySymbols(prototype).find(
    (s) => s.description === "kCapture",
  );
  if (kCapture === undefined) {
    throw new Error("EventEmitter.prototype has no kCapture flag where the sandbox expects it");
  }
  const maxListeners = EventEmitter.defaultMaxListeners;
  const capturesRejections = prototype[kCapture];
  const init = Reflect.get(EventEmitter, "init") as (options?: unknown) => void;
  type Emitter = Record<string | symbol, unknown>;
  define(EventEmitter, "init", function (this: Emitter, options?: unknown) {
    Reflect.apply(init, this, [options]);
    this._maxListeners ??= maxListeners;
    // Node's init has already refused a captureRejections option that is not a boolean.
    if ((options as { captureRejections?: unknown } | undefined)?.captureRejections !== true) {
      this[kCapture] = capturesRejections;
    }
  });
  // With targets it sets their own limits; with none, the default of the process.
  const setMaxListeners = Reflect.get(EventEmitter, "setMaxListeners");
  define(EventEmitter, "setMaxListeners", function (this: unknown, ...args: unknown[]) {
    if (args.length < 2) {
      throw refusal(
        "events.setMaxListeners without targets",
        "it sets the default of every emitter",
      );
    }
    Reflect.apply(setMaxListeners, this, args);
  });
}

/**
 * inspect's defaults are one object, which `defaultOptions` hands out (to change in place) and
 * merges an assignment into: frozen, both fail (the accessor is Node's for good, setter and all).
 * Its colour and style tables are read by every coloured inspect, and `custom` names the member
 * inspect calls on the objects it describes.
 */
function lockInspectDefaults(): void {
  Object.freeze(inspect.defaultOptions);
  for (const colour of Object.values(inspect.colors)) Object.freeze(colour);
  define(inspect, "colors", Object.freeze(inspect.colors));
  define(inspect, "styles", Object.freeze(inspect.styles));
  define(inspect, "custom", inspect.custom);
}

/** Replaces a function that changes a default of the process with one that throws. */
function refuse(target: object, key: string, why: string): void {
  if (typeof Reflect.get(target, key) !== "function") {
    throw new Error(`${key} is not the function the sandbox expects`);
  }
  define(target, key, () => {
    throw refusal(key, why);
  });
}

function refusal(what: string, why: string): Error {
  return new Error(`${what} is not available in the sandbox: ${why}`);
}

/** Defines a read-only member; a function put there is frozen, as machine code reaches it. */
function define(target: object, key: string, value: unknown): void {
  if (typeof value === "function") Object.freeze(value);
  const enumerable = Reflect.getOwnPropertyDescriptor(target, key)?.enumerable === true;
  Object.defineProperty(target, key, { value, writable: false, enumerable, configurable: false });
}
