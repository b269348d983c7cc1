// Freezes the host-realm classes a context can reach. Machine code gets host objects (a Response,
// a URL) and through them host prototypes; frozen, they cannot be patched to run machine code
// inside the sandbox's own host code (fetch internals, the message loop). `--frozen-intrinsics`
// already froze the ECMAScript intrinsics (Object.prototype, Function.prototype, Promise, …);
// this covers the web classes Node defines on top.

function freezeChain(start: object | null): void {
  for (let value = start; value !== null; value = Reflect.getPrototypeOf(value)) {
    Object.freeze(value);
  }
}

/** Freezes a constructor, its prototype object, and both prototype chains. */
export function hardenClass(constructor: unknown): void {
  if (typeof constructor !== "function") return;
  freezeChain(constructor);
  const prototype: unknown = (constructor as { prototype?: unknown }).prototype;
  if (typeof prototype === "object" && prototype !== null) freezeChain(prototype);
}
