// Strict JSON checks shared by the engine (requests) and the adapter (what a machine persists).

/**
 * Describes the first value in `value` that JSON cannot carry faithfully (a function, a Date or
 * other class instance, a bigint, a non-finite number, a cycle), or returns undefined when there
 * is none. `undefined` object properties are allowed: JSON drops them, as XState users expect.
 */
export function findNonJson(
  value: unknown,
  path = "context",
  seen = new Set<object>(),
): string | undefined {
  switch (typeof value) {
    case "string":
    case "boolean":
      return undefined;
    case "number":
      return Number.isFinite(value) ? undefined : `${path} is ${String(value)}`;
    case "undefined":
      return undefined;
    case "object":
      break;
    default:
      return `${path} is a ${typeof value}`;
  }
  if (value === null) return undefined;
  if (seen.has(value)) return `${path} is a circular reference`;
  seen.add(value);
  try {
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const item: unknown = value[i];
        if (item === undefined) return `${path}[${i}] is undefined`;
        const problem = findNonJson(item, `${path}[${i}]`, seen);
        if (problem) return problem;
      }
      return undefined;
    }
    const proto = Object.getPrototypeOf(value) as unknown;
    if (proto !== Object.prototype && proto !== null) {
      const name = (value as { constructor?: { name?: string } }).constructor?.name ?? "object";
      return `${path} is a ${name}, not a plain object`;
    }
    for (const key of Object.keys(value)) {
      const problem = findNonJson((value as Record<string, unknown>)[key], `${path}.${key}`, seen);
      if (problem) return problem;
    }
    return undefined;
  } finally {
    seen.delete(value);
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

/** A JSON-safe copy of a value produced by machine code (service output, errors), or null. */
export function toJsonSafe(value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message };
  try {
    const text = JSON.stringify(value);
    return text === undefined ? null : (JSON.parse(text) as unknown);
  } catch {
    return null;
  }
}
