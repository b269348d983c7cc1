// Freezes the sandbox process's own ECMAScript built-ins (Object.prototype, Array, Promise, …), so
// that machine code holding a host object cannot patch the code the sandbox itself runs through
// them. Node's --frozen-intrinsics did this, but it turns every member of every built-in prototype
// into a getter and setter (so that an object can still be given its own `name` over a frozen
// Error.prototype.name: the "override mistake"). V8 watches a few of those members to keep its
// fast paths (array species, the iterators of arrays, maps, sets and strings, promise `then`);
// once one is redefined it drops them for the whole process, every vm context included, and
// XState's steps ran about half again as slow. Here those members stay plain read-only data, and
// every other member of a built-in prototype becomes an accessor as Node made it.

/** A built-in prototype and the members of it V8's fast paths watch (see FAST_PATH_MEMBERS). */
type WatchedPrototype = readonly [prototype: object, members: readonly (string | symbol)[]];

const prototypeOf = (value: object): object => Reflect.getPrototypeOf(value)!;
const typedArray = prototypeOf(Uint8Array) as { prototype: object };
const arrayIteratorPrototype = prototypeOf([][Symbol.iterator]());
const mapIteratorPrototype = prototypeOf(new Map()[Symbol.iterator]());
const setIteratorPrototype = prototypeOf(new Set()[Symbol.iterator]());
const stringIteratorPrototype = prototypeOf(""[Symbol.iterator]());
const iteratorPrototype = prototypeOf(arrayIteratorPrototype);
const asyncIteratorPrototype = prototypeOf(prototypeOf(prototypeOf((async function* () {})())));
const TYPED_ARRAYS = [
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
];

/**
 * The members V8 keeps its process-wide "protectors" on: redefined in any way (an accessor in
 * place of the value included), a protector is invalidated for good, in every realm of the
 * process, and the fast paths it guards (Array.prototype.map's species lookup, spreading and
 * destructuring, `await`, typed arrays' methods) take the slow ones. They stay data properties:
 * frozen, an assignment to one on an object that inherits it throws, which no host code the
 * sandbox runs does (machine code runs in contexts of their own realm). Machine code can still
 * invalidate a protector through its own realm's built-ins, slowing only its org's processes.
 */
const FAST_PATH_MEMBERS: readonly WatchedPrototype[] = [
  [iteratorPrototype, [Symbol.iterator]],
  [Array.prototype, ["constructor", Symbol.iterator]],
  [arrayIteratorPrototype, ["next"]],
  [mapIteratorPrototype, ["next"]],
  [Set.prototype, [Symbol.iterator]],
  [setIteratorPrototype, ["next"]],
  [String.prototype, [Symbol.iterator]],
  [stringIteratorPrototype, ["next"]],
  [Promise.prototype, ["constructor", "then"]],
  [RegExp.prototype, ["constructor"]],
  ...TYPED_ARRAYS.map((type): WatchedPrototype => [type.prototype, ["constructor"]]),
];

/**
 * The built-in prototypes whose members objects assign over (`error.name = …`): each writable
 * member but those of FAST_PATH_MEMBERS becomes an accessor whose setter gives the object its own.
 */
function prototypesAllowingOverrides(): object[] {
  return [
    Object.prototype,
    Function.prototype,
    Boolean.prototype,
    Symbol.prototype,
    Error.prototype,
    AggregateError.prototype,
    EvalError.prototype,
    RangeError.prototype,
    ReferenceError.prototype,
    SyntaxError.prototype,
    TypeError.prototype,
    URIError.prototype,
    Number.prototype,
    BigInt.prototype,
    Date.prototype,
    String.prototype,
    stringIteratorPrototype,
    RegExp.prototype,
    prototypeOf(/e/[Symbol.matchAll]("")),
    Array.prototype,
    arrayIteratorPrototype,
    typedArray.prototype,
    ...TYPED_ARRAYS.map((type) => type.prototype),
    Map.prototype,
    mapIteratorPrototype,
    Set.prototype,
    setIteratorPrototype,
    WeakMap.prototype,
    WeakSet.prototype,
    ArrayBuffer.prototype,
    SharedArrayBuffer.prototype,
    DataView.prototype,
    WeakRef.prototype,
    FinalizationRegistry.prototype,
    iteratorPrototype,
    asyncIteratorPrototype,
    Promise.prototype,
    (console as { Console?: { prototype: object } }).Console?.prototype ?? Object.prototype,
    ...webAssemblyPrototypes(),
    ...intlPrototypes(),
  ];
}

/** WebAssembly, which the type libraries this package uses know only as a namespace. */
const webAssembly = Reflect.get(globalThis, "WebAssembly") as Record<string, { prototype: object }>;

function webAssemblyPrototypes(): object[] {
  const classes = ["Module", "Instance", "Table", "Memory", "CompileError", "LinkError"];
  return [...classes, "RuntimeError"].map((name) => webAssembly[name]!.prototype);
}

function intlPrototypes(): object[] {
  if (typeof Intl === "undefined") return [];
  const { Collator, DateTimeFormat, ListFormat, NumberFormat, PluralRules, RelativeTimeFormat } =
    Intl;
  return [Collator, DateTimeFormat, ListFormat, NumberFormat, PluralRules, RelativeTimeFormat].map(
    (type) => type.prototype as object,
  );
}

/**
 * The roots frozen deeply: every object reachable from them by properties (values, getters,
 * setters) and prototypes is frozen. The ECMAScript globals, the realm's hidden intrinsics
 * (%ThrowTypeError%, %TypedArray%, the iterator and generator prototypes), and the timers and
 * console the process's own code shares with nothing else but could be reached through; and
 * `prototypes`, those prototypesAllowingOverrides names.
 */
function intrinsicRoots(prototypes: readonly object[]): unknown[] {
  return [
    Reflect.getOwnPropertyDescriptor(Function.prototype, "caller")?.get,
    eval,
    isFinite,
    isNaN,
    parseFloat,
    parseInt,
    decodeURI,
    decodeURIComponent,
    encodeURI,
    encodeURIComponent,
    escape,
    unescape,
    Object,
    Function,
    Boolean,
    Symbol,
    Error,
    AggregateError,
    EvalError,
    RangeError,
    ReferenceError,
    SyntaxError,
    TypeError,
    URIError,
    Number,
    BigInt,
    Math,
    Date,
    String,
    RegExp,
    Array,
    typedArray,
    ...TYPED_ARRAYS,
    Map,
    Set,
    WeakMap,
    WeakSet,
    ArrayBuffer,
    SharedArrayBuffer,
    DataView,
    Atomics,
    JSON,
    WeakRef,
    FinalizationRegistry,
    Promise,
    Reflect,
    Proxy,
    ...prototypes,
    prototypeOf(function* () {}),
    prototypeOf(async function* () {}),
    prototypeOf(async function () {}),
    setTimeout,
    setInterval,
    setImmediate,
    clearTimeout,
    clearInterval,
    clearImmediate,
    console,
    webAssembly,
    typeof Intl === "undefined" ? undefined : Intl,
  ];
}

/** Freezes the process's built-ins for good; call once, before any machine code runs. */
export function freezeIntrinsics(): void {
  const watched = new Map<object, Set<string | symbol>>(
    FAST_PATH_MEMBERS.map(([prototype, members]) => [prototype, new Set(members)]),
  );
  const prototypes = prototypesAllowingOverrides();
  for (const prototype of prototypes) {
    const kept = watched.get(prototype);
    for (const key of Reflect.ownKeys(prototype)) {
      if (kept?.has(key) !== true) allowOverride(prototype, key);
    }
  }
  deepFreeze(intrinsicRoots(prototypes));
  Object.defineProperty(globalThis, "globalThis", {
    value: globalThis,
    writable: false,
    configurable: false,
  });
}

/**
 * Makes a writable data member an accessor: read, it answers the value; assigned on an object
 * that inherits it, it gives that object its own member, as assignment does over an unfrozen one.
 * The value stays reachable (as the getter's `value`) for deepFreeze to freeze.
 */
function allowOverride(prototype: object, key: string | symbol): void {
  const descriptor = Reflect.getOwnPropertyDescriptor(prototype, key);
  if (descriptor === undefined || !("value" in descriptor) || descriptor.configurable !== true) {
    return;
  }
  const value: unknown = descriptor.value;
  const get = Object.assign(() => value, { value });
  function set(this: unknown, assigned: unknown): void {
    const isObject = (typeof this === "object" && this !== null) || typeof this === "function";
    if (this === prototype || !isObject) {
      throw new TypeError(`Cannot assign to read only property '${String(key)}'`);
    }
    const target = this as Record<string | symbol, unknown>;
    // As an assignment in strict code: one the object refuses (frozen) throws.
    if (Object.hasOwn(target, key)) target[key] = assigned;
    else {
      // The host's Object.prototype is frozen with no `get` or `set` for a descriptor to inherit.
      Object.defineProperty(target, key, {
        value: assigned,
        writable: true,
        enumerable: true,
        configurable: true,
      });
    }
  }
  Reflect.defineProperty(prototype, key, {
    get,
    set,
    enumerable: descriptor.enumerable === true,
    configurable: true,
  });
}

/** Freezes each root and everything reachable from it by own properties and prototypes. */
function deepFreeze(roots: readonly unknown[]): void {
  const seen = new Set<object>();
  const queue: object[] = [];
  const reach = (value: unknown): void => {
    if ((typeof value !== "object" && typeof value !== "function") || value === null) return;
    if (seen.has(value)) return;
    seen.add(value);
    queue.push(value);
  };
  for (const root of roots) reach(root);
  for (let at = 0; at < queue.length; at++) {
    const value = queue[at]!;
    // Frozen before it is read, so nothing it holds can change while it is walked.
    Object.freeze(value);
    reach(Reflect.getPrototypeOf(value));
    for (const key of Reflect.ownKeys(value)) {
      const descriptor = Reflect.getOwnPropertyDescriptor(value, key)!;
      if ("value" in descriptor) reach(descriptor.value);
      else {
        reach(descriptor.get);
        reach(descriptor.set);
      }
    }
  }
}
