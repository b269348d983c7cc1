// The wire protocol between the pool and a sandbox process: one JSON object per line in each
// direction (requests on the child's stdin, replies on its fd 3). Each side validates what it
// reads, and the pool assumes the child may be compromised: a malformed message is dropped, never
// trusted, and never allowed to throw out of the reader. A call's payload and a result's JSON
// text travel as the line after their message (line-encoding.ts): escaped into a string field,
// they were written, escaped and unescaped twice per call, a microsecond or so each way.
import { encodeLine, encodeLineWithBody } from "./line-encoding.js";

/** The XState builds evaluated inside every version's context, as single-file ES modules. */
export type VendorSources = { xstate5: string; xstate4: string };

/** Sent once, first: everything a sandbox needs that it is not allowed to read from disk. */
export type InitMessage = {
  type: "init";
  adapter: string;
  vendor: VendorSources;
  /** Machine code's fetch may connect to non-public addresses (see network.ts). */
  allowPrivateNetworkFetch: boolean;
};
/** A version's bundle; sent at most once per process per version, before its first call. */
export type LoadMessage = { type: "load"; versionId: string; code: string };
export type CallMessage = {
  type: "call";
  id: number;
  versionId: string;
  op: string;
  payload: string;
};
export type PingMessage = { type: "ping"; seq: number };
/**
 * Asks the sandbox to drop a version it holds, unless a call of it is under way or its handler
 * says something of it still lives there (see UNLOADABLE_OP). Answered like a call, under `id`,
 * with the result "true" (dropped: its code must be sent again before its next call) or "false".
 */
export type UnloadMessage = { type: "unload"; id: number; versionId: string };
/**
 * Asks the sandbox to hand back the calls named that it has not started (see RecalledMessage): the
 * pool runs them elsewhere. A call that has started runs to its end and is answered as usual.
 */
export type RecallMessage = { type: "recall"; ids: number[] };

export type ParentMessage =
  InitMessage | LoadMessage | CallMessage | PingMessage | UnloadMessage | RecallMessage;

/**
 * The adapter op the sandbox asks before it drops a version: the handler answers "true" when
 * nothing of the version lives in the sandbox (no step waiting to be executed, no service running,
 * no delayed send waiting). Any other answer, or a throw, keeps the version.
 */
export const UNLOADABLE_OP = "unloadable";

export type LogLevel = "debug" | "info" | "warn" | "error";

export type ReadyMessage = { type: "ready" };
/** The child could not start (e.g. the adapter does not compile); it exits right after. */
export type InitFailedMessage = { type: "init-failed"; message: string };
export type PongMessage = { type: "pong"; seq: number };
export type ResultMessage = { type: "result"; id: number; result: string };
export type ErrorMessage = { type: "error"; id: number; error: { message: string; code: string } };
export type NotifyMessage = { type: "notify"; versionId: string; json: string };
/** Console output of machine code (or of the sandbox itself when `versionId` is absent). */
export type LogMessage = { type: "log"; level: LogLevel; message: string; versionId?: string };
/** The calls of a RecallMessage the sandbox will not run: they get no other answer. */
export type RecalledMessage = { type: "recalled"; ids: number[] };

export type ChildMessage =
  | ReadyMessage
  | InitFailedMessage
  | PongMessage
  | ResultMessage
  | ErrorMessage
  | NotifyMessage
  | LogMessage
  | RecalledMessage;

/** Whether a message read from the pool announces a body: a call's payload. */
export function parentMessageHasBody(value: unknown): boolean {
  return ownType(value) === "call";
}

/**
 * Whether a message read from a sandbox announces a body: a result's JSON text. Only a result's
 * exact header does, `{"type":"result","id":…}`: the reader holds it until its body comes, so a
 * sandbox must not have it hold anything larger. Any other message is read as a message (and a
 * result refused without its body).
 */
export function childMessageHasBody(value: unknown): boolean {
  return (
    ownType(value) === "result" &&
    Object.keys(value as Fields).length === 2 &&
    isId((value as Fields).id)
  );
}

/** A message from the pool as it goes on the wire. */
export function encodeParentMessage(message: ParentMessage): string {
  if (message.type !== "call") return encodeLine(message);
  const { payload, ...header } = message;
  return encodeLineWithBody(header, payload);
}

/** A message from a sandbox as it goes on the wire. */
export function encodeChildMessage(message: ChildMessage): string {
  if (message.type !== "result") return encodeLine(message);
  const { result, ...header } = message;
  return encodeLineWithBody(header, result);
}

function ownType(value: unknown): unknown {
  return isFields(value) && Object.hasOwn(value, "type") ? value.type : undefined;
}

/** The longest line the pool reads from a sandbox; a longer one gets the sandbox killed. */
export const MAX_CHILD_LINE_LENGTH = 64 * 1024 * 1024;
/** The longest line a sandbox reads from the pool (bundles travel this way). */
export const MAX_PARENT_LINE_LENGTH = 256 * 1024 * 1024;

type Fields = Record<string, unknown>;

function isFields(value: unknown): value is Fields {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isId(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function isIds(value: unknown): value is number[] {
  return Array.isArray(value) && value.every(isId);
}

function isString(value: unknown): value is string {
  return typeof value === "string";
}

const LOG_LEVELS: ReadonlySet<unknown> = new Set(["debug", "info", "warn", "error"]);

/**
 * Reads a message from a sandbox. Returns undefined for anything that is not exactly one of the
 * known shapes. Only own properties count: JSON.parse never produces inherited ones, but this
 * keeps the check honest if the value comes from elsewhere.
 */
export function parseChildMessage(
  value: unknown,
  body: string | undefined,
): ChildMessage | undefined {
  if (!isFields(value)) return undefined;
  const get = (key: string): unknown => (Object.hasOwn(value, key) ? value[key] : undefined);
  switch (get("type")) {
    case "ready":
      return { type: "ready" };
    case "init-failed": {
      const message = get("message");
      return isString(message) ? { type: "init-failed", message } : undefined;
    }
    case "pong": {
      const seq = get("seq");
      return isId(seq) ? { type: "pong", seq } : undefined;
    }
    case "result": {
      const id = get("id");
      return childMessageHasBody(value) && isId(id) && body !== undefined
        ? { type: "result", id, result: body }
        : undefined;
    }
    case "error": {
      const id = get("id");
      const error = get("error");
      if (!isId(id) || !isFields(error)) return undefined;
      const message = Object.hasOwn(error, "message") ? error.message : undefined;
      const code = Object.hasOwn(error, "code") ? error.code : undefined;
      if (!isString(message) || !isString(code)) return undefined;
      return { type: "error", id, error: { message, code } };
    }
    case "notify": {
      const versionId = get("versionId");
      const json = get("json");
      return isString(versionId) && isString(json)
        ? { type: "notify", versionId, json }
        : undefined;
    }
    case "log": {
      const level = get("level");
      const message = get("message");
      const versionId = get("versionId");
      if (!LOG_LEVELS.has(level) || !isString(message)) return undefined;
      if (versionId !== undefined && !isString(versionId)) return undefined;
      return versionId === undefined
        ? { type: "log", level: level as LogLevel, message }
        : { type: "log", level: level as LogLevel, message, versionId };
    }
    case "recalled": {
      const ids = get("ids");
      return isIds(ids) ? { type: "recalled", ids } : undefined;
    }
    default:
      return undefined;
  }
}

/** Reads a message from the pool (trusted, but checked so a bug fails loudly, not oddly). */
export function parseParentMessage(
  value: unknown,
  body: string | undefined,
): ParentMessage | undefined {
  if (!isFields(value)) return undefined;
  const get = (key: string): unknown => (Object.hasOwn(value, key) ? value[key] : undefined);
  switch (get("type")) {
    case "init": {
      const adapter = get("adapter");
      const vendor = get("vendor");
      const allowPrivateNetworkFetch = get("allowPrivateNetworkFetch");
      if (!isString(adapter) || !isFields(vendor)) return undefined;
      if (typeof allowPrivateNetworkFetch !== "boolean") return undefined;
      const { xstate5, xstate4 } = vendor;
      if (!isString(xstate5) || !isString(xstate4)) return undefined;
      return { type: "init", adapter, vendor: { xstate5, xstate4 }, allowPrivateNetworkFetch };
    }
    case "load": {
      const versionId = get("versionId");
      const code = get("code");
      return isString(versionId) && isString(code) ? { type: "load", versionId, code } : undefined;
    }
    case "call": {
      const id = get("id");
      const versionId = get("versionId");
      const op = get("op");
      if (!isId(id) || !isString(versionId) || !isString(op) || body === undefined) {
        return undefined;
      }
      return { type: "call", id, versionId, op, payload: body };
    }
    case "ping": {
      const seq = get("seq");
      return isId(seq) ? { type: "ping", seq } : undefined;
    }
    case "unload": {
      const id = get("id");
      const versionId = get("versionId");
      return isId(id) && isString(versionId) ? { type: "unload", id, versionId } : undefined;
    }
    case "recall": {
      const ids = get("ids");
      return isIds(ids) ? { type: "recall", ids } : undefined;
    }
    default:
      return undefined;
  }
}
