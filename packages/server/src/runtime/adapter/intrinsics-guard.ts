// Guards a context's built-ins against machine code that changes them (prototype pollution
// through event data, a patched Array.prototype.map): one instance's event must not change how
// another instance of the same version runs. Most built-ins are frozen; Object.prototype, which
// cannot be, is recorded at install and put back whenever it changed, before and after each request.

type Watched = {
  target: object;
  descriptors: Map<PropertyKey, PropertyDescriptor>;
  keyCount: number;
  /** Data properties as [key, value]: the fast check reads them without allocating descriptors. */
  values: Array<[PropertyKey, unknown]>;
};

// Captured when the adapter loads, before any machine code runs: machine code may replace the
// globals later, not these references.
const { ownKeys, getOwnPropertyDescriptor, defineProperty, deleteProperty, get } = Reflect;
const same = Object.is;

export type IntrinsicsGuard = {
  /** Puts changed built-ins back and names what had changed (empty: nothing). Throws when it cannot. */
  restore(): string[];
};

export function guardIntrinsics(): IntrinsicsGuard {
  const watched: Watched[] = watchedObjects().map((target) => {
    const descriptors = describe(target);
    const values: Watched["values"] = [];
    for (const [key, descriptor] of descriptors)
      if ("value" in descriptor) values.push([key, descriptor.value]);
    return { target, descriptors, keyCount: descriptors.size, values };
  });
  return {
    restore() {
      const changed: string[] = [];
      // Runs twice per request: the fast check reads values only; a full comparison (with
      // descriptors, to put things back) runs just for an object that fails it.
      for (const entry of watched) if (!unchanged(entry)) restoreOne(entry, changed);
      return changed;
    },
  };
}

function unchanged({ target, keyCount, values, descriptors }: Watched): boolean {
  if (ownKeys(target).length !== keyCount) return false;
  for (const [key, value] of values) if (!same(get(target, key), value)) return false;
  // Accessors (few) are compared by their functions.
  if (values.length === keyCount) return true;
  for (const [key, original] of descriptors) {
    if ("value" in original) continue;
    const current = getOwnPropertyDescriptor(target, key);
    if (!current || current.get !== original.get || current.set !== original.set) return false;
  }
  return true;
}

function restoreOne({ target, descriptors }: Watched, changed: string[]): void {
  for (const key of ownKeys(target)) {
    if (!descriptors.has(key)) {
      changed.push(`${nameOf(target)}.${String(key)} added`);
      if (!deleteProperty(target, key))
        throw new Error(`cannot remove ${String(key)} from a built-in`);
    }
  }
  for (const [key, original] of descriptors) {
    const current = getOwnPropertyDescriptor(target, key);
    if (current && sameDescriptor(current, original)) continue;
    changed.push(`${nameOf(target)}.${String(key)} changed`);
    if (!defineProperty(target, key, original))
      throw new Error(`cannot restore built-in ${String(key)}`);
  }
}

/**
 * Object.prototype is what event data reaches through a naive merge (`__proto__`,
 * `constructor.prototype`). It cannot be frozen without breaking ordinary code: assigning
 * `obj.toString = …` throws once Object.prototype.toString is read-only (xstate 4 does exactly
 * that), so it is checked and restored instead.
 */
function watchedObjects(): object[] {
  return [Object.prototype];
}

/**
 * The other built-ins every machine leans on are frozen outright: no ordinary code writes to
 * them, and a frozen object needs no check per request.
 */
export function freezeIntrinsics(): void {
  const frozen: object[] = [
    Object,
    Array,
    Array.prototype,
    Function.prototype,
    String.prototype,
    Number.prototype,
    Boolean.prototype,
    Promise,
    Promise.prototype,
    JSON,
    Math,
    Reflect,
  ];
  for (const target of frozen) Object.freeze(target);
}

function nameOf(target: object): string {
  const constructor = (target as { constructor?: { name?: unknown } }).constructor;
  if (typeof target === "function") return String((target as { name?: unknown }).name);
  return typeof constructor?.name === "string" ? `${constructor.name}.prototype` : "built-in";
}

function describe(target: object): Map<PropertyKey, PropertyDescriptor> {
  const descriptors = new Map<PropertyKey, PropertyDescriptor>();
  for (const key of ownKeys(target)) {
    const descriptor = getOwnPropertyDescriptor(target, key);
    if (descriptor) descriptors.set(key, descriptor);
  }
  return descriptors;
}

function sameDescriptor(a: PropertyDescriptor, b: PropertyDescriptor): boolean {
  return (
    same(a.value, b.value) &&
    a.get === b.get &&
    a.set === b.set &&
    a.writable === b.writable &&
    a.enumerable === b.enumerable &&
    a.configurable === b.configurable
  );
}
