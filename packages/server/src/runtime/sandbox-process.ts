// One sandbox process as the pool sees it: spawning it confined, talking to it over two pipes,
// timing its calls, watching its heartbeat and memory, and failing its calls when it dies. The
// process is presumed hostile: every line it sends is validated, and nothing it does can throw
// into the host.
//
// Not child_process.fork: Node's IPC channel JSON.parses each line from the child without a
// try/catch, in the parent, so a child writing `{oops\n` to its IPC fd (any escaped code can:
// writing to an fd needs no permission) throws an uncaught exception in the host. Its internal
// NODE_* commands are another surface. Plain pipes with our own reader have neither.
import { spawn, type ChildProcess } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import { MachineCodeError } from "../errors.js";
import { readResidentBytes } from "./process-memory.js";
import {
  classifyExit,
  describeCause,
  errorAtDeath,
  machineError,
  type DeathCause,
} from "./sandbox-death.js";
import { batchedWriter, type LineWriter } from "./sandbox/batched-writer.js";
import { LineReader } from "./sandbox/line-reader.js";
import {
  MAX_CHILD_LINE_LENGTH,
  childMessageHasBody,
  encodeParentMessage,
  parseChildMessage,
  type CallMessage,
  type ChildMessage,
  type InitMessage,
  type ParentMessage,
  type UnloadMessage,
} from "./sandbox/protocol.js";
import type { SandboxLaunch } from "./sandbox-launch.js";
import { droppedLinesWarning, LogBudget, MACHINE_LOG_BUDGET } from "./log-budget.js";
import { cutMachineText } from "./machine-text.js";
import type { SandboxLogger } from "./sandbox-logger.js";

export type Timing = {
  /** The pool's default per-call budget; heartbeats must answer within the largest budget. */
  callTimeoutMs: number;
  heartbeatMs: number;
  startupTimeoutMs: number;
  maxResidentBytes: number;
};

export type ProcessEvents = {
  notify(process: SandboxProcess, versionId: string, json: string): void;
  /** `killed`: the pool killed it (else it died on its own). */
  death(process: SandboxProcess, cause: DeathCause, killed: boolean): void;
  protocolError(process: SandboxProcess, detail: string): void;
};

/** What a call resolves to when its process handed it back unrun (see recall). */
export const RECALLED: unique symbol = Symbol("recalled");

/** A call assigned to a process; `dispatchedAt` is set once the request is written. */
export type PendingCall = {
  readonly id: number;
  readonly timeoutMs: number;
  /** Whether the call may be handed back unrun, to run in another process (see recall). */
  readonly recallable: boolean;
  readonly promise: Promise<string | typeof RECALLED>;
  dispatchedAt?: number;
};

type CallRecord = PendingCall & {
  resolve(result: string | typeof RECALLED): void;
  reject(error: unknown): void;
  timer?: NodeJS.Timeout;
  /** Set once the process was asked to hand it back: the one case in which it may. */
  recallAsked?: boolean;
};

const STDERR_TAIL_LENGTH = 16 * 1024;
const LOG_CHUNK_LENGTH = 2 * 1024;
const MAX_LOGGED_OUTPUT_CHUNKS = 200;
/** How long to wait for stdio to close after the process exited before classifying the death. */
const CLOSE_GRACE_MS = 2000;

let nextCallId = 1;

export class SandboxProcess {
  readonly orgId: string;
  /** Affinities pinned to this process (the pool's bookkeeping, reported when it dies). */
  readonly affinities = new Set<string>();
  /**
   * Versions whose code was sent (or is being fetched, or whose unload is being asked), by
   * version id, least recently used first (pool bookkeeping).
   */
  readonly versions = new Map<string, Promise<void>>();
  /** Calls of each version assigned here and not yet settled (pool bookkeeping). */
  readonly versionCalls = new Map<string, number>();
  /** Resolves once the sandbox is ready for requests; rejects if it dies first. */
  readonly ready: Promise<void>;
  /** Resolves once the OS process is gone and its pipes are closed. */
  readonly exited: Promise<void>;
  lastUsedAt = Date.now();

  readonly #child: ChildProcess;
  readonly #stdin: Writable;
  readonly #writer: LineWriter;
  readonly #timing: Timing;
  readonly #events: ProcessEvents;
  readonly #logger: SandboxLogger;
  /** Machine console lines this process may still log (log-budget.ts). */
  readonly #logBudget = new LogBudget({
    ...MACHINE_LOG_BUDGET,
    reportUntold: (dropped) => this.#warnDropped(dropped),
  });
  readonly #calls = new Map<number, CallRecord>();
  #readyState: "starting" | "ready" | "dead" = "starting";
  #readyAt: number | undefined;
  /** Set when the OS process has exited but its pipes have not closed yet. */
  #exiting = false;
  #resolveReady!: () => void;
  #rejectReady!: (error: unknown) => void;
  #ping: { seq: number; sentAt: number } | undefined;
  /** When the process last answered a call (see #armBudget). */
  #lastAnswerAt = 0;
  #pingSeq = 0;
  #checkingMemory = false;
  #stderrTail = "";
  #outputBudget = MAX_LOGGED_OUTPUT_CHUNKS;
  #exitDetail: string | undefined;
  readonly #ticker: NodeJS.Timeout;
  readonly #startupTimer: NodeJS.Timeout;

  constructor(options: {
    orgId: string;
    launch: SandboxLaunch;
    init: InitMessage;
    timing: Timing;
    events: ProcessEvents;
    logger: SandboxLogger;
  }) {
    this.orgId = options.orgId;
    this.#timing = options.timing;
    this.#events = options.events;
    this.#logger = options.logger;
    this.ready = new Promise<void>((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    this.ready.catch(() => {});

    const { launch } = options;
    this.#child = spawn(launch.command, launch.args, {
      env: launch.env,
      stdio: ["pipe", "pipe", "pipe", "pipe"],
      windowsHide: true,
      // Its own process group: a terminal's Ctrl-C (SIGINT to the server's group) must not kill
      // sandboxes mid-event while the server shuts down gracefully. A sandbox still ends with
      // the server: it exits when its stdin closes.
      detached: true,
    });
    const [stdin, stdout, stderr, channel] = this.#child.stdio as unknown as [
      Writable,
      Readable,
      Readable,
      Readable,
    ];
    this.#stdin = stdin;
    this.#writer = batchedWriter(stdin);
    // A dead child makes these streams error (EPIPE, ECONNRESET); the exit handler reports it.
    for (const stream of [stdin, stdout, stderr, channel]) stream.on("error", () => {});

    const reader = new LineReader(
      MAX_CHILD_LINE_LENGTH,
      {
        value: (value, body) => this.#receive(value, body),
        malformed: (preview) => this.#protocolError(`a line that is not JSON: ${preview}`),
        overflow: () => this.kill({ kind: "protocol", detail: "a line longer than the limit" }),
      },
      childMessageHasBody,
    );
    channel.on("data", (chunk: Buffer) => reader.push(chunk));
    stdout.on("data", (chunk: Buffer) => this.#output("info", chunk));
    stderr.on("data", (chunk: Buffer) => {
      this.#stderrTail = (this.#stderrTail + chunk.toString("utf8")).slice(-STDERR_TAIL_LENGTH);
      this.#output("warn", chunk);
    });

    this.exited = new Promise<void>((resolve) => {
      let graceTimer: NodeJS.Timeout | undefined;
      const finish = () => {
        clearTimeout(graceTimer);
        this.#die(classifyExit(this.#stderrTail, this.#exitDetail), false);
        resolve();
      };
      this.#child.once("close", finish);
      this.#child.once("exit", (code, signal) => {
        this.#exiting = true;
        this.#exitDetail = signal ? `signal ${signal}` : `exit code ${code ?? "unknown"}`;
        graceTimer = setTimeout(finish, CLOSE_GRACE_MS);
      });
      this.#child.once("error", (error) => {
        this.#exitDetail = `spawn failed: ${error.message}`;
        // A spawn failure emits no "exit"; "close" may still follow, finish() is idempotent.
        graceTimer ??= setTimeout(finish, CLOSE_GRACE_MS);
      });
    });

    this.#startupTimer = setTimeout(() => {
      this.kill({ kind: "startup", detail: `not ready after ${this.#timing.startupTimeoutMs} ms` });
    }, this.#timing.startupTimeoutMs);
    this.#ticker = setInterval(() => this.#tick(), this.#timing.heartbeatMs);
    this.#send(options.init);
  }

  /** Whether the process can take calls: not dead, not dying. */
  get alive(): boolean {
    return this.#readyState !== "dead" && !this.#exiting;
  }

  /** When the process became ready for calls; undefined before. */
  get readyAt(): number | undefined {
    return this.#readyAt;
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Calls assigned to this process and not yet settled (dispatched or waiting to be). */
  get load(): number {
    return this.#calls.size;
  }

  /** Assigns a call to this process; it counts toward `load` from now on. */
  begin(timeoutMs: number, recallable = false): PendingCall {
    let resolve!: (result: string | typeof RECALLED) => void;
    let reject!: (error: unknown) => void;
    const promise = new Promise<string | typeof RECALLED>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // The caller may not await it before the process dies; that must not be an unhandled rejection.
    promise.catch(() => {});
    const call: CallRecord = { id: nextCallId++, timeoutMs, recallable, promise, resolve, reject };
    if (this.alive) this.#calls.set(call.id, call);
    else reject(this.#crashed("the sandbox process is gone"));
    return call;
  }

  /** Sends a version's bundle; the pool does this once per version, before its first call. */
  sendCode(versionId: string, code: string): void {
    this.#send({ type: "load", versionId, code });
  }

  /** Writes the request and starts its budget. */
  dispatch(pending: PendingCall, versionId: string, op: string, payload: string): void {
    this.#dispatch(pending, { type: "call", id: pending.id, versionId, op, payload });
  }

  /**
   * Asks the process to drop a version (see UnloadMessage), as a call with the pool's budget:
   * resolves true when it dropped it, false when it kept it or could not answer.
   */
  async unload(versionId: string): Promise<boolean> {
    const pending = this.begin(this.#timing.callTimeoutMs);
    this.#dispatch(pending, { type: "unload", id: pending.id, versionId });
    try {
      return (await pending.promise) === "true";
    } catch {
      return false;
    }
  }

  #dispatch(pending: PendingCall, message: CallMessage | UnloadMessage): void {
    const call = this.#calls.get(pending.id);
    if (call === undefined || call.dispatchedAt !== undefined) return;
    call.dispatchedAt = Date.now();
    this.#armBudget(call, call.timeoutMs);
    this.#send(message);
  }

  /**
   * A process runs one call at a time, in order: a call's budget runs from its dispatch or from
   * the last answer of its process, whichever is later, not from its dispatch alone, which
   * charged a call the time it waited behind others (ten 300 ms steps of one org, sent together,
   * overran a 1 s budget and took their process down).
   */
  #armBudget(call: CallRecord, ms: number): void {
    call.timer = setTimeout(() => {
      // Replies already read from the pipe but not yet handled get their turn first, so a call
      // that answered in time is never blamed because the host itself was busy.
      setImmediate(() => {
        if (!this.#calls.has(call.id)) return;
        const since = Math.max(call.dispatchedAt ?? 0, this.#lastAnswerAt);
        const left = since + call.timeoutMs - Date.now();
        if (left > 0) this.#armBudget(call, left);
        else this.kill({ kind: "timeout", callId: call.id, timeoutMs: call.timeoutMs });
      });
    }, ms);
  }

  /**
   * Hands back the recallable calls that have not started, each resolving RECALLED: at once those
   * not dispatched yet, and the dispatched ones the process confirms it will not run (it runs a
   * call it has started to its end). Their budgets stop; the pool runs them elsewhere.
   */
  recall(): void {
    const ids: number[] = [];
    for (const call of this.#calls.values()) {
      if (!call.recallable || call.recallAsked === true) continue;
      if (call.dispatchedAt === undefined) this.#handBack(call);
      else {
        call.recallAsked = true;
        ids.push(call.id);
      }
    }
    if (ids.length > 0) this.#send({ type: "recall", ids });
  }

  /** Fails a call that could not be dispatched (e.g. its code could not be fetched). */
  abandon(pending: PendingCall, error: unknown): void {
    const call = this.#calls.get(pending.id);
    if (call === undefined) return;
    this.#settle(call);
    call.reject(error);
  }

  /** Stops the process now (SIGKILL) and fails its calls according to `cause`. */
  kill(cause: DeathCause): void {
    if (this.#readyState === "dead") return;
    this.#die(cause, true);
    this.#child.kill("SIGKILL");
  }

  #send(message: ParentMessage): void {
    if (this.#readyState === "dead" || this.#stdin.destroyed) return;
    this.#writer.write(encodeParentMessage(message));
  }

  #receive(value: unknown, body: string | undefined): void {
    if (this.#readyState === "dead") return;
    const message = parseChildMessage(value, body);
    if (message === undefined) {
      this.#protocolError("a message of unknown shape");
      return;
    }
    this.#handle(message);
  }

  #handle(message: ChildMessage): void {
    switch (message.type) {
      case "ready":
        if (this.#readyState === "starting") {
          this.#readyState = "ready";
          this.#readyAt = Date.now();
          clearTimeout(this.#startupTimer);
          this.#resolveReady();
        }
        return;
      case "init-failed":
        this.kill({ kind: "startup", detail: message.message });
        return;
      case "pong":
        if (this.#ping?.seq === message.seq) this.#ping = undefined;
        return;
      case "result": {
        const call = this.#dispatched(message.id);
        if (call === undefined) return;
        this.#settle(call);
        call.resolve(message.result);
        return;
      }
      case "error": {
        const call = this.#dispatched(message.id);
        if (call === undefined) return;
        this.#settle(call);
        call.reject(machineError(message.error.code, message.error.message));
        return;
      }
      case "recalled":
        this.#recalled(message.ids);
        return;
      case "notify":
        if (!this.versions.has(message.versionId)) {
          this.#protocolError(`a notification for version ${message.versionId}, never loaded here`);
          return;
        }
        this.#events.notify(this, message.versionId, message.json);
        return;
      case "log": {
        const dropped = this.#logBudget.admit();
        if (dropped === undefined) return;
        if (dropped > 0) this.#warnDropped(dropped);
        const fields = { orgId: this.orgId, versionId: message.versionId, level: message.level };
        const text = cutMachineText(String(message.message));
        if (message.versionId === undefined) this.#logger.warn(`sandbox: ${text}`, fields);
        else this.#logger.info(`machine console: ${text}`, fields);
        return;
      }
    }
  }

  /** Tells the log how many console lines the budget dropped: with the next one, or on its own. */
  #warnDropped(dropped: number): void {
    this.#logger.warn(droppedLinesWarning("machine console", dropped), { orgId: this.orgId });
  }

  /** The call a reply is for; a reply for an unknown or undispatched id is reported, ignored. */
  #dispatched(id: number): CallRecord | undefined {
    const call = this.#calls.get(id);
    if (call?.dispatchedAt !== undefined) return call;
    // Overrunning calls get the process killed, so no late reply is legitimate.
    this.#protocolError(`a reply for call ${id}, which it was not asked`);
    return undefined;
  }

  /**
   * The calls the process will not run. Only calls it was asked to hand back count, taken in the
   * order they were assigned (whatever order it names them in): an affinity's calls keep theirs.
   */
  #recalled(ids: number[]): void {
    // Its length is checked before anything else is done with it: a hostile child may name
    // millions of ids in one line, and the host would spend seconds on them, every org waiting.
    if (ids.length > this.#calls.size) {
      this.#protocolError(`${ids.length} calls handed back, more than it was given`);
      return;
    }
    const named = new Set(ids);
    // #calls is in assignment order.
    const handedBack = [...this.#calls.values()].filter(
      (call) => call.recallAsked === true && named.has(call.id),
    );
    for (const call of handedBack) this.#handBack(call);
    const unasked = named.size - handedBack.length;
    if (unasked > 0) this.#protocolError(`${unasked} calls handed back that it was not asked to`);
  }

  /** Not an answer: the process's last answer, which times the call it runs, stays as it was. */
  #handBack(call: CallRecord): void {
    clearTimeout(call.timer);
    this.#calls.delete(call.id);
    call.resolve(RECALLED);
  }

  #settle(call: CallRecord): void {
    clearTimeout(call.timer);
    this.#calls.delete(call.id);
    this.lastUsedAt = Date.now();
    this.#lastAnswerAt = this.lastUsedAt;
  }

  #protocolError(detail: string): void {
    this.#logger.warn("sandbox sent an invalid message", { orgId: this.orgId, detail });
    this.#events.protocolError(this, detail);
  }

  /** Logs what the process wrote to stdout/stderr, up to a budget: it may be flooding on purpose. */
  #output(level: "info" | "warn", chunk: Buffer): void {
    if (this.#outputBudget <= 0) return;
    const text = chunk.toString("utf8", 0, LOG_CHUNK_LENGTH).trimEnd();
    if (!text) return;
    const stream = level === "info" ? "stdout" : "stderr";
    const fields = { orgId: this.orgId, pid: this.#child.pid };
    this.#logger[level](`sandbox ${stream}: ${text}`, fields);
    if (--this.#outputBudget === 0) {
      this.#logger.warn("sandbox output: further output of this process is not logged", fields);
    }
  }

  #tick(): void {
    if (this.#readyState !== "ready") return;
    const now = Date.now();
    if (this.#ping === undefined) {
      this.#ping = { seq: ++this.#pingSeq, sentAt: now };
      this.#send({ type: "ping", seq: this.#ping.seq });
    } else if (now - this.#ping.sentAt > this.#stuckAfterMs()) {
      const late = this.#ping;
      // As for call budgets: a pong already in the pipe is handled before the verdict.
      setImmediate(() => {
        if (this.#ping === late) this.kill({ kind: "unresponsive" });
      });
    }
    void this.#checkMemory();
  }

  /** A heartbeat may be delayed by a call running within its budget, never longer. */
  #stuckAfterMs(): number {
    let budget = this.#timing.callTimeoutMs;
    for (const call of this.#calls.values()) {
      if (call.dispatchedAt !== undefined) budget = Math.max(budget, call.timeoutMs);
    }
    return budget + this.#timing.heartbeatMs;
  }

  async #checkMemory(): Promise<void> {
    const pid = this.#child.pid;
    if (this.#checkingMemory || pid === undefined) return;
    this.#checkingMemory = true;
    try {
      const resident = await readResidentBytes(pid);
      if (resident !== undefined && resident > this.#timing.maxResidentBytes) {
        const mb = (bytes: number) => Math.round(bytes / (1024 * 1024));
        this.kill({
          kind: "memory",
          detail: `${mb(resident)} MB resident, over the ${mb(this.#timing.maxResidentBytes)} MB limit`,
        });
      }
    } finally {
      this.#checkingMemory = false;
    }
  }

  #crashed(message: string): MachineCodeError {
    return new MachineCodeError("sandbox-crashed", message);
  }

  /** Runs once, for our kills (immediately) and for exits (after stdio closed). */
  #die(cause: DeathCause, killed: boolean): void {
    if (this.#readyState === "dead") return;
    const wasStarting = this.#readyState === "starting";
    this.#readyState = "dead";
    clearInterval(this.#ticker);
    clearTimeout(this.#startupTimer);
    this.#stdin.destroy();
    if (wasStarting) this.#rejectReady(this.#crashed(describeCause(cause)));

    const calls = [...this.#calls.values()];
    this.#calls.clear();
    const running = calls.filter((call) => call.dispatchedAt !== undefined).length;
    const now = Date.now();
    for (const call of calls) {
      clearTimeout(call.timer);
      call.reject(errorAtDeath(call, cause, running, now));
    }
    this.#events.death(this, cause, killed);
  }
}
