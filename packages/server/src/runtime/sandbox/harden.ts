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

/**
 * Freezes the prototype every CryptoKey of this process has: an internal class of Node's, set
 * between a key and CryptoKey.prototype, that no global leads to, so hardenClass misses it. Left
 * open, one version's code could patch it for every key of the process: give another version's
 * keys a clone hook that hands them over, or an `extractable` getter that lets Node's own checks
 * export a non-extractable key. Only a key leads to it, and keys are made asynchronously: the
 * sandbox makes one and waits for this before it reports ready.
 */
export async function hardenCryptoKeys(): Promise<void> {
  const key = await crypto.subtle.importKey(
    "raw",
    new Uint8Array(16),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  freezeChain(Reflect.getPrototypeOf(key));
}
