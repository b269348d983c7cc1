// The sandbox process entry. It serves one org (the pool's choice) and caches, per machine
// version, a context with the bundle and adapter loaded. Requests arrive as JSON lines on stdin,
// replies leave as JSON lines on fd 3. It runs under Node's permission model, reading nothing but
// its own directory: everything else it needs (adapter, XState builds, bundles) comes in messages.
// First of all, before any other module's code: the built-ins are frozen (freeze-intrinsics.ts).
import "./intrinsics-frozen.js";
import net from "node:net";
import vm from "node:vm";
import type { AdapterHandler } from "../sandbox-contract.js";
import { batchedWriter } from "./batched-writer.js";
import { unpoolBuffers } from "./buffer-pool.js";
import { CallTurns } from "./call-turns.js";
import { confineProcess } from "./confine-process.js";
import { describeThrown } from "./describe.js";
import { hardenGlobalClasses, refuseDynamicImport } from "./globals.js";
import { hardenHostPrototypes } from "./harden.js";
import { LineReader } from "./line-reader.js";
import { loadMachineVersion } from "./machine-version.js";
import { BundleError } from "./module-loader.js";
import { boundedNotification } from "./notification-bound.js";
import { createSandboxFetch, type SandboxFetch } from "./network.js";
import { lockProcessSettings } from "./process-settings.js";
import {
  MAX_CHILD_LINE_LENGTH,
  MAX_PARENT_LINE_LENGTH,
  encodeChildMessage,
  parentMessageHasBody,
  parseParentMessage,
  type CallMessage,
  type ChildMessage,
  type InitMessage,
  type LoadMessage,
  type RecallMessage,
  type UnloadMessage,
  type VendorSources,
  UNLOADABLE_OP,
} from "./protocol.js";

const output = new net.Socket({ fd: 3, readable: false, writable: true });
const writer = batchedWriter(output);

function send(message: ChildMessage): void {
  writer.write(encodeChildMessage(message));
}

/** Sends a message carrying machine output, unless it is too long for the pool to accept. */
function sendBounded(message: ChildMessage): boolean {
  const lines = encodeChildMessage(message);
  // Each line of it is under the pool's cap when the two together are.
  if (lines.length > MAX_CHILD_LINE_LENGTH) return false;
  writer.write(lines);
  return true;
}

function log(level: "info" | "error", message: string): void {
  send({ type: "log", level, message });
}

function exit(code: number): void {
  output.end(() => process.exit(code));
}

let started: { vendor: VendorSources; adapter: vm.Script; fetch: SandboxFetch } | undefined;
const versions = new Map<string, Promise<AdapterHandler>>();
/** How each version's load ended, once it has: its handler, or undefined when it failed. */
const settled = new Map<string, AdapterHandler | undefined>();
/** What stops each version's timers, called when the version is dropped. */
const disposers = new Map<string, () => void>();
/** Calls under way, per version: a version is never dropped in the middle of one. */
const callsUnderWay = new Map<string, number>();

function init(message: InitMessage): void {
  try {
    const adapter = new vm.Script(message.adapter, {
      filename: "backstate:adapter",
      importModuleDynamically: refuseDynamicImport,
    });
    const fetch = createSandboxFetch({ allowPrivateNetwork: message.allowPrivateNetworkFetch });
    started = { vendor: message.vendor, adapter, fetch };
  } catch (error) {
    failInit(`the adapter does not compile: ${describeThrown(error)}`);
    return;
  }
  // No machine code runs before ready: the pool sends code and calls only after it. The settings
  // are locked first: once hardening has frozen the objects that carry them, they cannot be.
  try {
    lockProcessSettings();
  } catch (error) {
    failInit(`process settings could not be locked: ${describeThrown(error)}`);
    return;
  }
  hardenGlobalClasses();
  hardenHostPrototypes().then(
    () => send({ type: "ready" }),
    (error: unknown) => failInit(`host prototypes could not be hardened: ${describeThrown(error)}`),
  );
}

function failInit(message: string): void {
  send({ type: "init-failed", message });
  exit(2);
}

function load({ versionId, code }: LoadMessage): void {
  if (started === undefined || versions.has(versionId)) return;
  const loading = loadMachineVersion({
    versionId,
    code,
    vendor: started.vendor,
    adapter: started.adapter,
    fetch: started.fetch,
    onDispose: (dispose) => disposers.set(versionId, dispose),
    hooks: {
      log: (level, text) => send({ type: "log", level, message: text, versionId }),
      notify: (json) => {
        // A dropped version's leftovers (a stopped service's timer firing late) report nothing:
        // the pool no longer knows the version here, and nothing of it is waited for.
        if (versions.get(versionId) !== loading) return;
        const bounded = boundedNotification(json);
        if (bounded === undefined || !sendBounded({ type: "notify", versionId, json: bounded })) {
          throw new RangeError("the notification is too large");
        }
      },
    },
  });
  // Failures are reported to each call that awaits the version; this also handles the rejection.
  loading.then(
    (handler) => {
      if (versions.get(versionId) === loading) settled.set(versionId, handler);
    },
    () => {
      if (versions.get(versionId) === loading) settled.set(versionId, undefined);
    },
  );
  versions.set(versionId, loading);
}

/**
 * Drops a version the pool no longer wants here, so that its context (the bundle and its own
 * XState) can be collected: every version ever used would otherwise stay until the process ends.
 * Kept while it loads, while a call of it runs, and while its handler says something of it lives.
 */
function unload({ id, versionId }: UnloadMessage): void {
  let dropped = false;
  if (!versions.has(versionId)) dropped = true;
  else if (settled.has(versionId) && !callsUnderWay.has(versionId)) {
    const handler = settled.get(versionId);
    dropped = handler === undefined || idle(handler);
  }
  if (dropped) {
    versions.delete(versionId);
    settled.delete(versionId);
    disposers.get(versionId)?.();
    disposers.delete(versionId);
  }
  send({ type: "result", id, result: JSON.stringify(dropped) });
}

/** Whether the handler says nothing of its version lives here; machine code may answer anything. */
function idle(handler: AdapterHandler): boolean {
  try {
    return Reflect.apply(handler, undefined, [UNLOADABLE_OP, "{}"]) === "true";
  } catch {
    return false;
  }
}

function errorCode(error: unknown): string {
  if (error instanceof BundleError) return error.code;
  try {
    const code = (error as { code?: unknown } | null)?.code;
    // The pool decides which codes machine code may claim; anything else becomes machine-error.
    return typeof code === "string" ? code : "machine-error";
  } catch {
    return "machine-error";
  }
}

/** Runs calls one at a time, in arrival order, and hands back those the pool recalls. */
const turns = new CallTurns({ flush: writer.flush, afterWritten: writer.afterWritten });

/**
 * Hands back the calls named that have not started, so that this process, which the pool wants
 * for another org, is free after the call under way rather than after its whole backlog. The
 * pool runs them in another process of the org; each gets no answer here but this one.
 */
function recall({ ids }: RecallMessage): void {
  const handedBack = turns.recall(ids);
  if (handedBack.length > 0) send({ type: "recalled", ids: handedBack });
}

async function call({ id, versionId, op, payload }: CallMessage): Promise<void> {
  let turned = false;
  callsUnderWay.set(versionId, (callsUnderWay.get(versionId) ?? 0) + 1);
  try {
    const loading = versions.get(versionId);
    if (loading === undefined) {
      throw Object.assign(new Error(`no code was loaded for version ${versionId}`), {
        code: "invalid-state",
      });
    }
    // Queued at once when the code is there: a recall reads the queue, and must find every call
    // read before it (a call and the recall may arrive in one chunk, before any microtask runs).
    const handler = settled.get(versionId) ?? (await turns.whileLoading(id, loading));
    if (handler === undefined) return; // handed back: the recall answered for it
    // One call's machine code at a time, in arrival order: its answer leaves before the next
    // call runs, so the pool sees each call end when it does and times each from there, rather
    // than blaming calls queued behind others for the time they waited (see CallTurns for when
    // pings and recalls are read in between).
    turned = await turns.next(id);
    if (!turned) return; // handed back
    const result: unknown = await Reflect.apply(handler, undefined, [op, payload]);
    if (typeof result !== "string") {
      throw new TypeError(`the adapter answered ${typeof result}, not JSON text`);
    }
    if (!sendBounded({ type: "result", id, result })) {
      throw new RangeError("the result is too large");
    }
  } catch (error) {
    send({ type: "error", id, error: { message: describeThrown(error), code: errorCode(error) } });
  } finally {
    if (turned) turns.end();
    const left = (callsUnderWay.get(versionId) ?? 1) - 1;
    if (left > 0) callsUnderWay.set(versionId, left);
    else callsUnderWay.delete(versionId);
  }
}

const reader = new LineReader(
  MAX_PARENT_LINE_LENGTH,
  {
    value(value, body) {
      const message = parseParentMessage(value, body);
      if (message === undefined) {
        log("error", "the sandbox received a message it does not understand");
        return;
      }
      switch (message.type) {
        case "init":
          if (started === undefined) init(message);
          return;
        case "load":
          load(message);
          return;
        case "call":
          void call(message);
          return;
        case "unload":
          unload(message);
          return;
        case "ping":
          send({ type: "pong", seq: message.seq });
          return;
        case "recall":
          recall(message);
          return;
      }
    },
    malformed() {
      log("error", "the sandbox received a line that is not JSON");
    },
    overflow() {
      log("error", "the sandbox received a line that is too long");
      exit(3);
    },
  },
  parentMessageHasBody,
);

// Machine code that throws from a timer or leaves a promise rejected must not take down the other
// instances this process serves; the error is reported and the process carries on.
process.on("uncaughtException", (error) => log("error", `uncaught: ${describeThrown(error)}`));
process.on("unhandledRejection", (reason) =>
  log("error", `unhandled rejection: ${describeThrown(reason)}`),
);

unpoolBuffers();
confineProcess();

process.stdin.on("data", (chunk: Buffer) => reader.push(chunk));
// The pool closing our stdin is the shutdown signal.
process.stdin.on("end", () => exit(0));
process.stdin.on("error", () => exit(0));
output.on("error", () => process.exit(0));
