// The sandbox process entry. It serves one org (the pool's choice) and caches, per machine
// version, a context with the bundle and adapter loaded. Requests arrive as JSON lines on stdin,
// replies leave as JSON lines on fd 3. It runs under Node's permission model, reading nothing but
// its own directory: everything else it needs (adapter, XState builds, bundles) comes in messages.
import net from "node:net";
import vm from "node:vm";
import type { AdapterHandler } from "../sandbox-contract.js";
import { batchedWriter } from "./batched-writer.js";
import { describeThrown } from "./describe.js";
import { refuseDynamicImport } from "./globals.js";
import { hardenHostPrototypes } from "./harden.js";
import { encodeLine, LineReader } from "./line-reader.js";
import { loadMachineVersion } from "./machine-version.js";
import { BundleError } from "./module-loader.js";
import { boundedNotification } from "./notification-bound.js";
import { createSandboxFetch, type SandboxFetch } from "./network.js";
import {
  MAX_CHILD_LINE_LENGTH,
  MAX_PARENT_LINE_LENGTH,
  parseParentMessage,
  type CallMessage,
  type ChildMessage,
  type InitMessage,
  type LoadMessage,
  type VendorSources,
} from "./protocol.js";

const output = new net.Socket({ fd: 3, readable: false, writable: true });
const writeLine = batchedWriter(output);

function send(message: ChildMessage): void {
  writeLine(encodeLine(message));
}

/** Sends a message carrying machine output, unless it is too long for the pool to accept. */
function sendBounded(message: ChildMessage): boolean {
  const line = encodeLine(message);
  if (line.length > MAX_CHILD_LINE_LENGTH) return false;
  writeLine(line);
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
  // No machine code runs before ready: the pool sends code and calls only after it.
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
    hooks: {
      log: (level, text) => send({ type: "log", level, message: text, versionId }),
      notify: (json) => {
        const bounded = boundedNotification(json);
        if (bounded === undefined || !sendBounded({ type: "notify", versionId, json: bounded })) {
          throw new RangeError("the notification is too large");
        }
      },
    },
  });
  // Failures are reported to each call that awaits the version; this keeps the rejection handled.
  loading.catch(() => {});
  versions.set(versionId, loading);
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

async function call({ id, versionId, op, payload }: CallMessage): Promise<void> {
  try {
    const loading = versions.get(versionId);
    if (loading === undefined) {
      throw Object.assign(new Error(`no code was loaded for version ${versionId}`), {
        code: "invalid-state",
      });
    }
    const handler = await loading;
    const result: unknown = await Reflect.apply(handler, undefined, [op, payload]);
    if (typeof result !== "string") {
      throw new TypeError(`the adapter answered ${typeof result}, not JSON text`);
    }
    if (!sendBounded({ type: "result", id, result })) {
      throw new RangeError("the result is too large");
    }
  } catch (error) {
    send({ type: "error", id, error: { message: describeThrown(error), code: errorCode(error) } });
  }
}

const reader = new LineReader(MAX_PARENT_LINE_LENGTH, {
  value(value) {
    const message = parseParentMessage(value);
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
      case "ping":
        send({ type: "pong", seq: message.seq });
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
});

// Machine code that throws from a timer or leaves a promise rejected must not take down the other
// instances this process serves; the error is reported and the process carries on.
process.on("uncaughtException", (error) => log("error", `uncaught: ${describeThrown(error)}`));
process.on("unhandledRejection", (reason) =>
  log("error", `unhandled rejection: ${describeThrown(reason)}`),
);

process.stdin.on("data", (chunk: Buffer) => reader.push(chunk));
// The pool closing our stdin is the shutdown signal.
process.stdin.on("end", () => exit(0));
process.stdin.on("error", () => exit(0));
output.on("error", () => process.exit(0));
