// Guards a context's built-ins against machine code that changes them (prototype pollution
// through event data, a patched Array.prototype.map): one instance's event must not change how
// another instance of the same version runs. Freezing the built-ins would be simpler but breaks
// ordinary code (assigning `toString` to an object throws once Object.prototype is frozen), so
// the guard records them at install and puts back whatever changed, before and after each request.

type Baseline = Array<{ target: object; descriptors: Map<PropertyKey, PropertyDescriptor> }>;

// Captured at install: machine code may replace the globals later, not these references.
const { ownKeys, getOwnPropertyDescriptor, defineProperty, deleteProperty } = Reflect;
const same = Object.is;

export type IntrinsicsGuard = {
  /** Puts changed built-ins back and names what had changed (empty: nothing). Throws when it cannot. */
  restore(): string[];
};

export function guardIntrinsics(): IntrinsicsGuard {
  const baseline: Baseline = watchedObjects().map((target) => ({
    target,
    descriptors: describe(target),
  }));
  return {
    restore() {
      const changed: string[] = [];
      for (const { target, descriptors } of baseline) {
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
      return changed;
    },
  };
}

function watchedObjects(): object[] {
  const constructors = [
    Object,
    Array,
    Function,
    String,
    Number,
    Boolean,
    Symbol,
    Promise,
    Error,
    TypeError,
    RangeError,
    SyntaxError,
    RegExp,
    Date,
    Map,
    Set,
    WeakMap,
    WeakSet,
    ArrayBuffer,
    Uint8Array,
  ];
  const objects: object[] = [JSON, Math, Reflect];
  for (const constructor of constructors)
    objects.push(constructor, constructor.prototype as object);
  objects.push(
    Object.getPrototypeOf(Uint8Array) as object,
    Object.getPrototypeOf(Uint8Array.prototype) as object,
  );
  return objects;
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
