// The mapping language of identity and token providers (State Backed's, after the Amazon States
// Language): a JSON object whose shape is the output's.
// - A key ending in `.$` takes a JSONPath (jsonpath-plus) into the input; the output key is the
//   key without `.$`. A path without the leading `$` is read as if it had one (`sub` = `$.sub`).
//   A path matching nothing leaves the key out; matching one value gives that value; matching
//   several gives them as an array, in document order. (So `$.roles[*]` over one role gives the
//   role itself: map `$.roles` to keep an array whatever its length.)
// - Any other key is copied literally; objects nested under it are mappings themselves, so dynamic
//   keys can appear at any depth. Arrays and scalars are literals.
// JSONPath filters and script expressions (`?(…)`, `(…)`) are refused: they would evaluate code
// an org admin wrote on the server. Mappings are checked when saved, with the `mapping` parameter
// named in the 400; applying a checked mapping never throws.
import { JSONPath } from "jsonpath-plus";
import { InvalidParameterError } from "../../errors.js";
import type { JsonObject, JsonValue } from "../../runtime/adapter-protocol.js";

export type Mapping = Record<string, unknown>;

const MAX_DEPTH = 8;
const MAX_ENTRIES = 256;
const MAX_PATH_LENGTH = 512;
const MAX_MAPPING_BYTES = 16 * 1024;
/** jsonpath-plus caches every path it parses, forever; past this many it starts over. */
const MAX_CACHED_PATHS = 4096;

/** Throws InvalidParameterError (`mapping`) saying what is wrong with `mapping`, if anything. */
export function checkMapping(mapping: unknown, parameter = "mapping"): asserts mapping is Mapping {
  const fail = (why: string): never => {
    throw new InvalidParameterError(parameter, `${parameter} ${why}`);
  };
  if (!isPlainObject(mapping)) fail("must be a JSON object");
  if (JSON.stringify(mapping).length > MAX_MAPPING_BYTES) {
    fail(`is larger than ${MAX_MAPPING_BYTES} bytes`);
  }
  let entries = 0;
  const walk = (node: Record<string, unknown>, where: string, depth: number): void => {
    if (depth > MAX_DEPTH) fail(`nests deeper than ${MAX_DEPTH} levels at ${where}`);
    const outputs = new Set<string>();
    for (const [key, value] of Object.entries(node)) {
      if (++entries > MAX_ENTRIES) fail(`has more than ${MAX_ENTRIES} entries`);
      const dynamic = key.endsWith(".$");
      const output = dynamic ? key.slice(0, -2) : key;
      const at = where === "" ? JSON.stringify(key) : `${where}.${JSON.stringify(key)}`;
      if (output === "") fail(`has an empty key at ${at}`);
      if (output === "__proto__") fail(`cannot produce the key __proto__ (${at})`);
      if (outputs.has(output)) {
        fail(`produces the key ${JSON.stringify(output)} twice (literal and path) at ${at}`);
      }
      outputs.add(output);
      if (dynamic) {
        if (typeof value !== "string") fail(`must give a JSONPath string for ${at}`);
        const problem = pathProblem(value as string);
        if (problem !== undefined) fail(`has an invalid JSONPath at ${at}: ${problem}`);
      } else if (isPlainObject(value)) {
        walk(value, at, depth + 1);
      }
    }
  };
  walk(mapping as Record<string, unknown>, "", 1);
}

/** The output of `mapping` over `input` (a checked mapping: see checkMapping). */
export function applyMapping(mapping: Mapping, input: unknown): JsonObject {
  const output: JsonObject = {};
  for (const [key, value] of Object.entries(mapping)) {
    let result: JsonValue | undefined;
    if (key.endsWith(".$")) {
      result = typeof value === "string" ? select(value, input) : undefined;
    } else if (isPlainObject(value)) {
      result = applyMapping(value, input);
    } else {
      result = toJson(value);
    }
    if (result !== undefined) define(output, key.endsWith(".$") ? key.slice(0, -2) : key, result);
  }
  return output;
}

/** `$` is implied: `sub` and `.sub` mean `$.sub`, `[0]` means `$[0]`. */
export function normalizePath(path: string): string {
  if (path.startsWith("$")) return path;
  if (path.startsWith("[") || path.startsWith(".")) return `$${path}`;
  return `$.${path}`;
}

function select(path: string, input: unknown): JsonValue | undefined {
  let matches: unknown[];
  try {
    matches = evaluate(normalizePath(path), input);
  } catch {
    return undefined;
  }
  const values = matches.map(toJson).filter((value) => value !== undefined);
  if (values.length === 0) return undefined;
  return values.length === 1 ? values[0] : values;
}

function evaluate(path: string, input: unknown): unknown[] {
  const cache = JSONPath.cache as Record<string, unknown>;
  if (Object.keys(cache).length > MAX_CACHED_PATHS) JSONPath.cache = {};
  // JSONPath wants an object or array; a scalar input has no paths but `$`.
  const json = typeof input === "object" && input !== null ? input : { value: input };
  const found: unknown = JSONPath({ path, json: json, wrap: true, eval: false });
  return Array.isArray(found) ? (found as unknown[]) : [];
}

/** Why `path` is not a JSONPath this language accepts, or undefined when it is one. */
function pathProblem(path: string): string | undefined {
  if (path.trim() === "") return "it is empty";
  if (path.length > MAX_PATH_LENGTH) return `it is longer than ${MAX_PATH_LENGTH} characters`;
  let depth = 0;
  let quote: string | undefined;
  for (let i = 0; i < path.length; i++) {
    const char = path[i]!;
    if (quote !== undefined) {
      if (char === "\\") i++;
      else if (char === quote) quote = undefined;
      continue;
    }
    if (char === "'" || char === '"') {
      if (depth === 0) return `a quote outside brackets at position ${i}`;
      quote = char;
    } else if (char === "[") {
      if (depth > 0) return `nested brackets at position ${i}`;
      depth++;
    } else if (char === "]") {
      if (depth === 0) return `an unmatched ] at position ${i}`;
      depth--;
    } else if (char === "(" || char === ")") {
      return "filter and script expressions (?(…), (…)) are not supported";
    } else if (char === "`") {
      return "backtick escapes are not supported";
    }
  }
  if (quote !== undefined) return "an unterminated quoted name";
  if (depth > 0) return "an unclosed [";
  try {
    evaluate(normalizePath(path), {});
  } catch {
    // The library's own message names its internals (e.g. "this._trace(...).filter is not a
    // function"), which say nothing to whoever wrote the path.
    return "it is not a JSONPath this server can evaluate";
  }
  return undefined;
}

/** A JSON copy of a value (undefined for what JSON cannot hold, such as functions). */
function toJson(value: unknown): JsonValue | undefined {
  if (value === undefined) return undefined;
  const text = JSON.stringify(value);
  return text === undefined ? undefined : (JSON.parse(text) as JsonValue);
}

/** Sets an own property, even for a name like `__proto__` that assignment would treat specially. */
function define(target: JsonObject, key: string, value: JsonValue): void {
  Object.defineProperty(target, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}
