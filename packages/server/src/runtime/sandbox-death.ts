// Why a sandbox process ended, and what each call it held is told: the coded errors of the
// runtime (sandbox-timeout, sandbox-memory-exceeded, sandbox-crashed) come from here, as does the
// filter on the codes a sandbox may claim for machine errors.
import { MachineCodeError, type ErrorCode } from "../errors.js";

export type DeathCause =
  /** A call overran its budget; the process was killed. */
  | { kind: "timeout"; callId: number; timeoutMs: number }
  /** Heartbeats went unanswered: machine code blocked the event loop outside any call. */
  | { kind: "unresponsive" }
  /** Over the resident cap (killed), or the V8 heap limit or the data limit (it aborted). */
  | { kind: "memory"; detail: string }
  /** Killed to make room for another org. */
  | { kind: "reassigned" }
  | { kind: "closed" }
  /** It sent a line past the length limit. */
  | { kind: "protocol"; detail: string }
  | { kind: "startup"; detail: string }
  /** It exited or was signalled, for no reason the pool knows. */
  | { kind: "exited"; detail: string };

/** What the error for one call depends on. */
export type CallAtDeath = { id: number; timeoutMs: number; dispatchedAt?: number };

/** Codes machine code may put on its own errors; a sandbox claiming any other gets machine-error. */
const MACHINE_CODES: ReadonlySet<string> = new Set<ErrorCode>([
  "machine-error",
  "invalid-bundle",
  "rejected-by-machine-authorizer",
  "invalid-parameter",
  "invalid-state",
  "not-json-serializable",
  "context-too-large",
]);

const MAX_MESSAGE_LENGTH = 8 * 1024;

/** A sentence on why a process ended, for errors, logs and SandboxLoss reports. */
export function describeCause(cause: DeathCause): string {
  switch (cause.kind) {
    case "timeout":
      return `a call overran its ${cause.timeoutMs} ms budget`;
    case "unresponsive":
      return "the sandbox stopped answering heartbeats (machine code blocked its event loop)";
    case "memory":
      return `the sandbox ran out of memory (${cause.detail})`;
    case "reassigned":
      return "the sandbox process was recycled to serve another org";
    case "closed":
      return "the sandbox pool was closed";
    case "protocol":
      return `the sandbox broke the protocol (${cause.detail})`;
    case "startup":
      return `the sandbox failed to start (${cause.detail})`;
    case "exited":
      return `the sandbox process exited (${cause.detail})`;
  }
}

/** Reads an exit the pool did not cause: V8 prints its heap-limit abort on stderr. */
export function classifyExit(stderrTail: string, exitDetail: string | undefined): DeathCause {
  if (/heap out of memory|Reached heap limit/i.test(stderrTail)) {
    return { kind: "memory", detail: "JavaScript heap limit reached" };
  }
  // Node's own allocations (TextEncoder's output, a growing heap page) past the data limit that
  // sandbox-launch.ts sets are fatal, where machine code's ArrayBuffers get a RangeError.
  if (/process out of memory|std::bad_alloc/i.test(stderrTail)) {
    return { kind: "memory", detail: "memory limit reached" };
  }
  return { kind: "exited", detail: exitDetail ?? "unknown reason" };
}

/**
 * The error for one call of a dead process. The call that overran gets sandbox-timeout; with
 * memory exhausted, the call gets sandbox-memory-exceeded only if it was the one running (with
 * several there is no telling whose doing it was); every other call gets sandbox-crashed.
 */
export function errorAtDeath(
  call: CallAtDeath,
  cause: DeathCause,
  runningCalls: number,
  now: number,
): MachineCodeError {
  const running = call.dispatchedAt !== undefined;
  if (cause.kind === "timeout" && cause.callId === call.id) {
    return new MachineCodeError(
      "sandbox-timeout",
      `the machine code did not answer within ${call.timeoutMs} ms`,
    );
  }
  if (
    cause.kind === "unresponsive" &&
    call.dispatchedAt !== undefined &&
    now - call.dispatchedAt >= call.timeoutMs
  ) {
    return new MachineCodeError(
      "sandbox-timeout",
      `the machine code did not answer within ${call.timeoutMs} ms (the sandbox stopped responding)`,
    );
  }
  if (cause.kind === "memory" && running && runningCalls === 1) {
    return new MachineCodeError("sandbox-memory-exceeded", describeCause(cause));
  }
  return new MachineCodeError("sandbox-crashed", describeCause(cause));
}

/** The codes errorAtDeath gives: the call was lost with its sandbox process. */
const DEATH_CODES: ReadonlySet<string> = new Set<ErrorCode>([
  "sandbox-timeout",
  "sandbox-memory-exceeded",
  "sandbox-crashed",
]);

/** Whether `err` says the call's sandbox process was lost (killed for its time or memory, or died). */
export function isSandboxLoss(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && DEATH_CODES.has(code);
}

/** The error for a call the machine code failed, keeping its code only if machine code may claim it. */
export function machineError(code: string, message: string): MachineCodeError {
  return new MachineCodeError(
    MACHINE_CODES.has(code) ? (code as ErrorCode) : "machine-error",
    message.slice(0, MAX_MESSAGE_LENGTH),
  );
}
