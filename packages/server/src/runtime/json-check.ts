// Strict JSON checks shared by the engine (requests) and the adapter (what a machine persists).

/**
 * How deep JSON taken from callers may nest (bodies, the act-as header, a token's claims). Far
 * beyond what contexts, events and claims need, and far below what recursive code (machines'
 * own, JSON.stringify, the checks here once were) can walk without running out of stack.
 */
export const MAX_CALLER_JSON_DEPTH = 128;

/** Says `what` nests too deep for JSON from a caller (see MAX_CALLER_JSON_DEPTH), if it does. */
export function callerNestingProblem(value: unknown, what: string): string | undefined {
  return nestsDeeperThan(value, MAX_CALLER_JSON_DEPTH)
    ? `${what} nests deeper than ${MAX_CALLER_JSON_DEPTH} levels`
    : undefined;
}

/**
 * Whether `value` has objects or arrays nested more than `maxDepth` deep: `{}` and `[]` are
 * depth 1, a scalar depth 0. Walks with a list, not recursion, so any depth can be asked about.
 */
export function nestsDeeperThan(value: unknown, maxDepth: number): boolean {
  const pending: Array<{ container: object; depth: number }> = [];
  if (typeof value === "object" && value !== null) pending.push({ container: value, depth: 1 });
  while (pending.length > 0) {
    const { container, depth } = pending.pop()!;
    if (depth > maxDepth) return true;
    // One by one: spreading a huge array into push() would overflow the stack.
    for (const child of Object.values(container) as unknown[]) {
      if (typeof child === "object" && child !== null) {
        pending.push({ container: child, depth: depth + 1 });
      }
    }
  }
  return false;
}

/** An object or array findNonJson is inside of: the keys (none for an array) and where it is. */
type Open = { value: object; path: string; keys: string[] | undefined; next: number };

/**
 * Describes the first value in `value` that JSON cannot carry faithfully (a function, a Date or
 * other class instance, a bigint, a non-finite number, a cycle), or returns undefined when there
 * is none. `undefined` object properties are allowed: JSON drops them, as XState users expect.
 * Walks depth first with a stack of its own, not recursion (machine code can build values of any
 * depth), so the problem it reports is the first in document order.
 */
export function findNonJson(value: unknown, path = "context"): string | undefined {
  const stack: Open[] = [];
  // The objects from the root to the one being walked: meeting one of them again is a cycle
  // (meeting a shared object elsewhere is not).
  const ancestors = new Set<object>();
  let item = value;
  let itemPath = path;
  for (;;) {
    const problem = scalarProblem(item, itemPath);
    if (problem !== undefined) return problem;
    if (typeof item === "object" && item !== null) {
      if (ancestors.has(item)) return `${itemPath} is a circular reference`;
      let keys: string[] | undefined;
      if (!Array.isArray(item)) {
        const proto = Object.getPrototypeOf(item) as unknown;
        if (proto !== Object.prototype && proto !== null) {
          const name = (item as { constructor?: { name?: string } }).constructor?.name ?? "object";
          return `${itemPath} is a ${name}, not a plain object`;
        }
        keys = Object.keys(item);
      }
      ancestors.add(item);
      stack.push({ value: item, path: itemPath, keys, next: 0 });
    }
    // The next child of the innermost object or array that has one left; done when none has.
    let open = stack[stack.length - 1];
    while (open !== undefined && open.next >= (open.keys ?? (open.value as unknown[])).length) {
      ancestors.delete(open.value);
      stack.pop();
      open = stack[stack.length - 1];
    }
    if (open === undefined) return undefined;
    const at = open.next++;
    if (open.keys === undefined) {
      item = (open.value as unknown[])[at];
      itemPath = `${open.path}[${at}]`;
      if (item === undefined) return `${itemPath} is undefined`;
    } else {
      const key = open.keys[at]!;
      item = (open.value as Record<string, unknown>)[key];
      itemPath = `${open.path}.${key}`;
    }
  }
}

/** What is wrong with a value that is not an object or array, if anything. */
function scalarProblem(value: unknown, path: string): string | undefined {
  switch (typeof value) {
    case "string":
    case "boolean":
    case "undefined":
    case "object":
      return undefined;
    case "number":
      return Number.isFinite(value) ? undefined : `${path} is ${String(value)}`;
    default:
      return `${path} is a ${typeof value}`;
  }
}

/** UTF-8 byte length of a string, without TextEncoder allocations for the common ASCII case. */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/**
 * A JSON-safe copy of a value produced by machine code (service output, errors), or null when it
 * cannot be made. A value JSON has no form for (undefined, a function) is undefined, so the field
 * that holds it is left out, as XState leaves a promise's `output` undefined when it returns none.
 */
export function toJsonSafe(value: unknown): unknown {
  try {
    // Read inside the try: machine code can make either a getter that throws, or a non-string.
    if (value instanceof Error) return { name: String(value.name), message: String(value.message) };
    const text = JSON.stringify(value);
    return text === undefined ? undefined : (JSON.parse(text) as unknown);
  } catch {
    return null;
  }
}

/**
 * Whether an object anywhere in `value` has an own key `__proto__`. JSON.parse keeps it as data,
 * but validation and machine code copy objects by assignment, which drops it or sets a
 * prototype: refused, rather than silently lost.
 */
export function holdsProtoKey(value: unknown): boolean {
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const next = pending.pop();
    if (typeof next !== "object" || next === null) continue;
    if (!Array.isArray(next) && Object.hasOwn(next, "__proto__")) return true;
    // One by one: spreading a huge array into push() would overflow the stack.
    for (const child of Object.values(next) as unknown[]) pending.push(child);
  }
  return false;
}

/**
 * How many objects and arrays JSON text from a sandbox may hold before the server parses it. The
 * parse runs on the main thread every org shares, and its time grows with them, not with the
 * text's size: a step answer padded with 18 million empty objects (51 MB) held it for 13 s. A
 * million takes about 0.2 s, and no answer within the step limits needs as many.
 */
export const MAX_SANDBOX_JSON_CONTAINERS = 1_000_000;

/**
 * Whether JSON text may hold more than `max` objects and arrays. Every `{` and `[` is counted,
 * those in strings too, so it never counts too few; text of at most `max` characters cannot hold
 * more (each takes two), and is not read.
 */
export function mayHoldMoreContainers(text: string, max: number): boolean {
  if (text.length <= max) return false;
  let count = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if ((code === 0x7b || code === 0x5b) && ++count > max) return true;
  }
  return false;
}
