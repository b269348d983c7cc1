// The walk the tests of shared host objects run inside a sandbox, as machine code can: from the
// values given to it, over own members, symbol-keyed ones, getters read on their objects and
// prototypes. Machine code that prepends this calls `findOpenSharedHostObjects(handOut)` to learn
// which host objects, shared by every version of the process, are left open to patching. One
// copy, so that every such test holds host objects to the same standard.
export const SHARED_HOST_OBJECT_WALK = `
const contextRoots = [Object.prototype, Function.prototype];
const isContextObject = (value) => {
  for (let p = value; p !== null; p = Object.getPrototypeOf(p)) if (contextRoots.includes(p)) return true;
  return false;
};
function walk(roots) {
  const paths = new Map();
  const queue = [];
  const reach = (value, path, depth) => {
    if ((typeof value !== "object" && typeof value !== "function") || value === null) return;
    if (paths.has(value)) return;
    paths.set(value, path);
    queue.push([value, path, depth]);
  };
  reach(roots, "", 0);
  for (let at = 0; at < queue.length && at < 100_000; at++) {
    const [value, path, depth] = queue[at];
    // The context's own objects are machine code's to change: past the record of what was
    // handed out (and globalThis in it), only host objects lead on.
    const own = isContextObject(value);
    if (own && depth > 2) continue;
    const keys = new Set(Reflect.ownKeys(value));
    if (!own) {
      reach(Object.getPrototypeOf(value), path + ".__proto__", depth + 1);
      for (let p = Object.getPrototypeOf(value); p !== null; p = Object.getPrototypeOf(p)) {
        for (const key of Reflect.ownKeys(p)) keys.add(key);
      }
    }
    for (const key of keys) {
      if (typeof key === "string" && /^[0-9]+$/.test(key) && !Array.isArray(value)) continue;
      const name = path + "." + String(key);
      const member = Reflect.getOwnPropertyDescriptor(value, key);
      if (member !== undefined && !("value" in member)) {
        reach(member.get, name + "<get>", depth + 1);
        reach(member.set, name + "<set>", depth + 1);
      }
      if (key === "caller" || key === "arguments") continue;
      try { reach(value[key], name, depth + 1); } catch {}
    }
  }
  return paths;
}

// Open: members can be added, or one can be redefined or reassigned to an object or function
// (a prototype frozen but for a writable primitive, EventEmitter's kCapture, is closed).
function isOpen(value) {
  if (Object.isExtensible(value)) return true;
  return Reflect.ownKeys(value).some((key) => {
    const d = Reflect.getOwnPropertyDescriptor(value, key);
    if (d.configurable) return true;
    return "value" in d && d.writable && ((typeof d.value === "object" && d.value !== null) || typeof d.value === "function");
  });
}

// A class (or a constructor function): objects were made with it, or its prototype carries
// members, or inherits from another's. The other host functions are methods, which host code
// calls but never reads members of, and never constructs with.
function isClass(fn, madePrototypes) {
  const prototype = Reflect.getOwnPropertyDescriptor(fn, "prototype")?.value;
  if (typeof prototype !== "object" || prototype === null) return false;
  if (madePrototypes.has(prototype)) return true;
  const parent = Object.getPrototypeOf(prototype);
  return Reflect.ownKeys(prototype).some((key) => key !== "constructor") || (parent !== null && Object.getPrototypeOf(parent) !== null);
}

// Walks what handOut answers, twice (it makes fresh objects each time): what both walks meet is
// shared by the whole process. Answers how much the first walk met, and the paths of the shared
// prototypes, classes and objects left open.
async function findOpenSharedHostObjects(handOut) {
  const first = walk(await handOut());
  const second = walk(await handOut());
  const madePrototypes = new Set([...first.keys()].map((value) => Object.getPrototypeOf(value)));
  // A method's own prototype object is inert: nothing constructs with a method.
  const inert = new Set();
  for (const value of first.keys()) {
    if (typeof value === "function" && !isClass(value, madePrototypes)) {
      inert.add(Reflect.getOwnPropertyDescriptor(value, "prototype")?.value);
    }
  }
  const open = [];
  for (const [value, path] of first) {
    if (!second.has(value) || isContextObject(value) || inert.has(value)) continue;
    if (typeof value === "function" && !isClass(value, madePrototypes)) continue;
    if (isOpen(value)) open.push(path);
  }
  return { walked: first.size, open };
}
`;
