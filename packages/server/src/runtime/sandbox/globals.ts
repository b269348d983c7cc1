// Creates the vm context a machine version runs in: the ECMAScript built-ins of a fresh realm plus
// web-standard globals (fetch, URL, crypto, timers, a captured console, …), and nothing of Node:
// no process, require, Buffer, global, module, nor a way to import node: builtins.
//
// Limits, recorded here because they are the shape of the defence:
// - Plain host functions (fetch, atob, timers, console, crypto) are wrapped in functions of the
//   context's realm, so `fetch.constructor` is the context's Function, which only builds code in
//   the context. Host classes (URL, Response, …) and the objects host functions return are host
//   objects, so `x.constructor.constructor` reaches the host Function; the sandbox process runs with
//   --disallow-code-generation-from-strings, so calling it throws an EvalError.
// - Host objects make cross-realm surprises: `new TextEncoder().encode("") instanceof Uint8Array`
//   is false inside the context (Array.isArray and ArrayBuffer.isView still work).
// - Host prototypes reachable from those objects are frozen (freeze-intrinsics.ts and harden.ts),
//   so machine code cannot patch the sandbox's own code through them.
import vm from "node:vm";
import { sandboxStructuredClone } from "./clone.js";
import { formatConsoleArgs, describeThrown } from "./describe.js";
import { hardenClass, hardenReachable } from "./harden.js";
import { FETCH_CLASSES, type SandboxFetch } from "./network.js";
import type { LogLevel } from "./protocol.js";
import { createTimers } from "./timers.js";

/** What a context reports to the sandbox: console output, errors nobody caught, notifications. */
export type ContextHooks = {
  log(level: LogLevel, message: string): void;
  notify(json: string): void;
};

/** A new context, and its `notify` as a function of the context's own realm. */
export type SandboxContext = {
  context: vm.Context;
  notify: (json: string) => void;
  /** Stops the context's timers for good (its version is dropped). */
  dispose: () => void;
};

type HostFunction = (...args: unknown[]) => unknown;

/** Web classes offered as globals, when this Node has them (fetch's come from network.ts). */
const CLASS_NAMES = [
  "URL",
  "URLSearchParams",
  "TextEncoder",
  "TextDecoder",
  "TextEncoderStream",
  "TextDecoderStream",
  "Blob",
  "File",
  "AbortController",
  "AbortSignal",
  "Event",
  "EventTarget",
  "DOMException",
  "ReadableStream",
  "ReadableStreamDefaultReader",
  "ReadableStreamBYOBReader",
  "ReadableStreamBYOBRequest",
  "ReadableByteStreamController",
  "ReadableStreamDefaultController",
  "WritableStream",
  "WritableStreamDefaultWriter",
  "WritableStreamDefaultController",
  "TransformStream",
  "TransformStreamDefaultController",
  "ByteLengthQueuingStrategy",
  "CountQueuingStrategy",
  "CompressionStream",
  "DecompressionStream",
] as const;

/** Host classes not offered as globals whose instances machine code can still obtain. */
const REACHABLE_CLASS_NAMES = ["CryptoKey", "Crypto", "SubtleCrypto"] as const;

const SUBTLE_METHODS = [
  "encrypt",
  "decrypt",
  "sign",
  "verify",
  "digest",
  "generateKey",
  "deriveKey",
  "deriveBits",
  "importKey",
  "exportKey",
  "wrapKey",
  "unwrapKey",
] as const;

const CONSOLE_LEVELS: Record<string, LogLevel> = {
  log: "info",
  info: "info",
  debug: "debug",
  trace: "debug",
  warn: "warn",
  error: "error",
};

// Runs inside each new context before any machine code, so the `Reflect.apply`, `Promise` and
// `Object.defineProperty` it captures are the context's untouched originals.
const INSTALLER_SOURCE = `(function install(host) {
  "use strict";
  const apply = Reflect.apply;
  const defineProperty = Object.defineProperty;
  const keys = Object.keys;
  const ContextPromise = Promise;
  const wrap = (name, target) =>
    ({ [name](...args) { return apply(target, undefined, args); } })[name];
  const wrapAsync = (name, target) =>
    ({
      [name](...args) {
        return new ContextPromise((resolve, reject) => {
          apply(target, undefined, args).then(resolve, reject);
        });
      },
    })[name];
  const wrapAll = (functions, wrapper) => {
    const result = {};
    for (const name of keys(functions)) result[name] = wrapper(name, functions[name]);
    return result;
  };
  const define = (name, value) =>
    defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });

  for (const name of keys(host.functions)) define(name, wrap(name, host.functions[name]));
  for (const name of keys(host.asyncFunctions)) define(name, wrapAsync(name, host.asyncFunctions[name]));
  for (const name of keys(host.classes)) define(name, host.classes[name]);
  define("console", wrapAll(host.console, wrap));
  const crypto = wrapAll(host.crypto, wrap);
  crypto.subtle = wrapAll(host.subtle, wrapAsync);
  define("crypto", crypto);
  return wrap("notify", host.notify);
})`;

let installerScript: vm.Script | undefined;
let classesHardened = false;

/** The `importModuleDynamically` of everything compiled in a context: `import()` always fails. */
export function refuseDynamicImport(): never {
  throw new TypeError("import() is not available to machine code: bundle your dependencies");
}

function collectClasses(): Record<string, unknown> {
  const classes: Record<string, unknown> = {};
  const host = globalThis as Record<string, unknown>;
  for (const name of CLASS_NAMES) {
    if (typeof host[name] === "function") classes[name] = host[name];
  }
  Object.assign(classes, FETCH_CLASSES);
  return classes;
}

/**
 * Freezes the classes offered to machine code, plainly: before harden.ts's hardenHostPrototypes,
 * which lets instances of the Node classes it finds behind them override inherited members
 * (Node's own code assigns over them), and would let machine code do so on these too.
 */
export function hardenGlobalClasses(): void {
  if (classesHardened) return;
  const host = globalThis as Record<string, unknown>;
  const classes = [
    ...Object.values(collectClasses()),
    ...REACHABLE_CLASS_NAMES.map((name) => host[name]),
  ];
  for (const value of classes) hardenClass(value);
  // Then their methods and statics, and what those lead to: one version could otherwise give
  // `Headers.prototype.get` a member, or `Response.json` a Symbol.hasInstance, for all the others.
  hardenReachable(classes);
  classesHardened = true;
}

function subtleFunctions(): Record<string, HostFunction> {
  const subtle = globalThis.crypto.subtle as unknown as Record<string, HostFunction>;
  const functions: Record<string, HostFunction> = {};
  for (const name of SUBTLE_METHODS) {
    const method = subtle[name];
    if (typeof method === "function") {
      functions[name] = (...args) => Reflect.apply(method, subtle, args);
    }
  }
  return functions;
}

/**
 * A fresh context with the web-standard globals; each call builds an unrelated realm. `fetch` is
 * the sandbox's guarded one (network.ts), shared by the contexts of a process.
 */
export function createSandboxContext(
  hooks: ContextHooks,
  name: string,
  fetch: SandboxFetch,
): SandboxContext {
  const report = (where: string) => (error: unknown) =>
    hooks.log("error", `uncaught error in ${where}: ${describeThrown(error)}`);
  const timers = createTimers(report("a timer or microtask"));
  const hostCrypto = globalThis.crypto;

  const consoleFunctions: Record<string, HostFunction> = {};
  for (const [method, level] of Object.entries(CONSOLE_LEVELS)) {
    consoleFunctions[method] = (...args) => hooks.log(level, formatConsoleArgs(args));
  }

  // Already done at the sandbox's start (child.ts); here for contexts made without it (tests).
  hardenGlobalClasses();
  const bindings = {
    functions: {
      atob: (data: unknown) => atob(String(data)),
      btoa: (data: unknown) => btoa(String(data)),
      // Not Node's: it rebuilds host objects as whatever class they name (clone.ts).
      structuredClone: (value: unknown, options?: unknown) =>
        sandboxStructuredClone(value, options),
      setTimeout: timers.setTimeout,
      clearTimeout: timers.clearTimeout,
      setInterval: timers.setInterval,
      clearInterval: timers.clearInterval,
      queueMicrotask: timers.queueMicrotask,
    } as Record<string, HostFunction>,
    asyncFunctions: {
      fetch: (input: unknown, init?: unknown) => fetch(input, init),
    } as Record<string, HostFunction>,
    classes: collectClasses(),
    console: consoleFunctions,
    crypto: {
      getRandomValues: (array: unknown) =>
        hostCrypto.getRandomValues(array as Parameters<typeof hostCrypto.getRandomValues>[0]),
      randomUUID: () => hostCrypto.randomUUID(),
    } as Record<string, HostFunction>,
    subtle: subtleFunctions(),
    notify: (json: unknown) => {
      if (typeof json !== "string") throw new TypeError("notify takes JSON text");
      hooks.notify(json);
    },
  };

  // The object behind the global must have no prototype: Node looks globals up along its chain,
  // so a plain {} would make `globalThis.constructor` the host's Object.
  const context = vm.createContext(Object.create(null) as object, {
    name,
    // The context's own eval/Function/WebAssembly build code in the context's realm only; the
    // host realm refuses code generation (--disallow-code-generation-from-strings).
    codeGeneration: { strings: true, wasm: true },
    importModuleDynamically: refuseDynamicImport,
  });
  installerScript ??= new vm.Script(INSTALLER_SOURCE, {
    filename: "backstate:globals",
    importModuleDynamically: refuseDynamicImport,
  });
  const install = installerScript.runInContext(context) as (
    host: typeof bindings,
  ) => (json: string) => void;
  return { context, notify: install(bindings), dispose: timers.dispose };
}
