// The pool of sandbox processes that run untrusted machine code. It decides which process serves
// a call: each process serves one org for its whole life (a sandbox escape must never find another
// org's code or data in its process), calls with the same affinity stay on one process, and a
// process that must change org is killed and replaced. Whatever a process does, the host only
// ever sees coded errors and reports. Which versions' code each process holds is
// sandbox-versions.ts's; which process gives up its slot to another org when every slot is taken,
// and when (held steps, retirement, calls handed back after a turn), is sandbox-retirement.ts's.
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { MachineCodeError } from "../errors.js";
import type {
  SandboxCallOptions,
  SandboxLoss,
  SandboxNotification,
  SandboxTarget,
} from "./sandbox-contract.js";
import { sandboxLaunch, type SandboxLaunch } from "./sandbox-launch.js";
import type { SandboxLogger } from "./sandbox-logger.js";
import {
  poolSettings,
  positiveInteger,
  type SandboxPoolOptions,
  type SandboxPoolSettings,
} from "./sandbox-pool-options.js";
import { describeCause, type DeathCause } from "./sandbox-death.js";
import {
  RECALLED,
  SandboxProcess,
  type PendingCall,
  type ProcessEvents,
} from "./sandbox-process.js";
import { SandboxRetirement, settlesHeldStep } from "./sandbox-retirement.js";
import { ensureVersion, useLoadedVersion, versionCallSettled } from "./sandbox-versions.js";
import { WaitingCalls } from "./waiting-calls.js";
import type { InitMessage } from "./sandbox/protocol.js";

export type { SandboxPoolOptions } from "./sandbox-pool-options.js";

export type SandboxPoolStats = {
  /** Processes alive now. */
  live: number;
  started: number;
  /** Processes the pool killed, for any reason (including org switches and close). */
  killed: number;
  /** Processes that died on their own (including heap exhaustion). */
  crashed: number;
  timeouts: number;
  unresponsive: number;
  memoryExceeded: number;
  /** Processes killed to serve another org. */
  orgSwitches: number;
  /** Messages from sandboxes that were malformed, of unknown shape, or unexpected. */
  protocolErrors: number;
};

type Waiter = {
  orgId: string;
  affinity: string | undefined;
  op: string;
  timeoutMs: number;
  init: InitMessage;
  resolve(assignment: Assignment): void;
  reject(error: unknown): void;
};

type Assignment = { sandbox: SandboxProcess; call: PendingCall };

const VENDOR_DIR = new URL("../../vendor/", import.meta.url);

export class SandboxPool {
  readonly #settings: SandboxPoolSettings;
  readonly #launch: SandboxLaunch;
  readonly #logger: SandboxLogger;
  readonly #processes = new Set<SandboxProcess>();
  /** Affinity → process, keyed by org too: affinities are only unique within an org. */
  readonly #affinities = new Map<string, SandboxProcess>();
  readonly #waiting = new WaitingCalls<Waiter>();
  /** Held steps and the processes retiring for another org (see sandbox-retirement.ts). */
  readonly #retirement: SandboxRetirement;
  readonly #notificationListeners = new Set<(notification: SandboxNotification) => void>();
  readonly #lossListeners = new Set<(loss: SandboxLoss) => void>();
  readonly #events: ProcessEvents;
  /**
   * Kills the processes if the host exits without closing the pool. A sandbox stuck in a loop
   * never reads the end of its stdin, so it would otherwise outlive the host, spinning.
   */
  readonly #killOnExit = () => {
    for (const sandbox of this.#processes) sandbox.kill({ kind: "closed" });
  };
  #init: Promise<InitMessage> | undefined;
  #drainScheduled = false;
  #closed = false;
  readonly #stats: Omit<SandboxPoolStats, "live"> = {
    started: 0,
    killed: 0,
    crashed: 0,
    timeouts: 0,
    unresponsive: 0,
    memoryExceeded: 0,
    orgSwitches: 0,
    protocolErrors: 0,
  };

  constructor(options: SandboxPoolOptions) {
    const settings = poolSettings(options);
    this.#settings = settings;
    this.#launch = sandboxLaunch({
      entry: settings.childEntry,
      memoryLimitMb: settings.memoryLimitMb,
      maxResidentMb: settings.maxResidentMb,
    });
    this.#logger = settings.logger;
    this.#retirement = new SandboxRetirement({
      processes: this.#processes,
      orgTurnMs: settings.orgTurnMs,
      retireWithinMs: settings.retireWithinMs,
      logger: this.#logger,
      serveWaiting: () => this.#scheduleDrain(),
    });
    if (process.platform === "linux" && this.#launch.dataLimitMb === undefined) {
      this.#logger.warn(
        "no /bin/sh to set the sandboxes' data limit: their ArrayBuffers are bounded only by the resident check, once a second",
      );
    }
    this.#events = {
      notify: (sandbox, versionId, json) =>
        this.#emit(this.#notificationListeners, { orgId: sandbox.orgId, versionId, json }),
      death: (sandbox, cause, killed) => this.#onDeath(sandbox, cause, killed),
      protocolError: () => {
        this.#stats.protocolErrors++;
      },
    };
  }

  get stats(): SandboxPoolStats {
    return { ...this.#stats, live: this.#processes.size };
  }

  /**
   * Unpins an affinity: its calls may go to any process of the org again. The engine releases an
   * instance once nothing of it lives in a sandbox (no step awaiting execution, no service), so
   * pins do not pile up with every instance ever touched.
   */
  release(orgId: string, affinity: string): void {
    const key = affinityKey(orgId, affinity);
    const sandbox = this.#affinities.get(key);
    if (!sandbox) return;
    this.#affinities.delete(key);
    sandbox.affinities.delete(affinity);
  }

  /**
   * Keeps the process `affinity` is pinned to from being recycled for another org while a step
   * of it waits there for its commit, after which the engine executes or discards it: recycling
   * it would lose the effects of a committed transition. Answers the release (idempotent).
   */
  holdStep(orgId: string, affinity: string): () => void {
    const sandbox = this.#affinities.get(affinityKey(orgId, affinity));
    if (sandbox === undefined || !sandbox.alive) return () => {};
    return this.#retirement.hold(sandbox);
  }

  /**
   * Runs `op` on the version's adapter handler and resolves with its JSON result. Rejects with a
   * MachineCodeError: the adapter's own code (machine-error, invalid-bundle, …) or
   * sandbox-timeout, sandbox-memory-exceeded, sandbox-crashed when the process had to go.
   */
  async call(
    target: SandboxTarget,
    op: string,
    payloadJson: string,
    options: SandboxCallOptions = {},
  ): Promise<string> {
    if (typeof target.orgId !== "string" || typeof target.versionId !== "string") {
      throw new TypeError("target needs an orgId and a versionId");
    }
    if (typeof op !== "string" || typeof payloadJson !== "string") {
      throw new TypeError("op and payloadJson must be strings");
    }
    const timeoutMs = positiveInteger(
      "timeoutMs",
      options.timeoutMs,
      this.#settings.timing.callTimeoutMs,
    );
    const closed = () => new MachineCodeError("sandbox-crashed", "the sandbox pool is closed");
    if (this.#closed) throw closed();
    const init = await this.#initMessage();
    if (this.#closed) throw closed();

    for (let handedBack = false; ; handedBack = true) {
      const { sandbox, call } = await new Promise<Assignment>((resolve, reject) => {
        const waiter: Waiter = {
          orgId: target.orgId,
          affinity: options.affinity,
          op,
          timeoutMs,
          init,
          resolve,
          reject,
        };
        if (handedBack) {
          this.#waiting.handBack(waiter);
          this.#scheduleDrain();
        } else if (!this.#assign(waiter)) this.#waiting.add(waiter);
      });
      let inUse = false;
      try {
        // Ready, with the version's code there (the usual call): it goes out in this turn.
        if (sandbox.readyAt === undefined || !useLoadedVersion(sandbox, target.versionId)) {
          await sandbox.ready;
          await ensureVersion(sandbox, target, this.#settings.maxVersionsPerProcess);
        }
        inUse = true; // counted by useLoadedVersion or ensureVersion
        sandbox.dispatch(call, target.versionId, op, payloadJson);
      } catch (error) {
        sandbox.abandon(call, error);
      }
      let answer: string | typeof RECALLED;
      try {
        answer = await call.promise;
      } finally {
        if (inUse) versionCallSettled(sandbox, target.versionId);
        // The process may be idle now, and a waiter of another org may be able to take it.
        this.#scheduleDrain();
      }
      if (answer !== RECALLED) return answer;
      // Handed back unrun by a process retiring for another org: it waits to be served again.
      if (this.#closed) throw closed();
    }
  }

  /** Listens to adapter notifications; returns the function that stops listening. */
  onNotification(listener: (notification: SandboxNotification) => void): () => void {
    this.#notificationListeners.add(listener);
    return () => this.#notificationListeners.delete(listener);
  }

  /** Listens to process deaths (except at close); returns the function that stops listening. */
  onSandboxLost(listener: (loss: SandboxLoss) => void): () => void {
    this.#lossListeners.add(listener);
    return () => this.#lossListeners.delete(listener);
  }

  /** Kills every process; pending and later calls fail with sandbox-crashed. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#retirement.close();
    const closedError = new MachineCodeError("sandbox-crashed", "the sandbox pool is closed");
    for (const waiter of this.#waiting.takeAll()) waiter.reject(closedError);
    const processes = [...this.#processes];
    for (const sandbox of processes) sandbox.kill({ kind: "closed" });
    await Promise.all(processes.map((sandbox) => sandbox.exited));
  }

  /** Reads the adapter and the XState builds once; every process gets them in its init message. */
  #initMessage(): Promise<InitMessage> {
    this.#init ??= (async () => {
      const vendorFile = (name: string) =>
        readFile(fileURLToPath(new URL(name, VENDOR_DIR)), "utf8").catch((error: unknown) => {
          throw new Error(
            `the sandbox's XState build ${name} is missing: run packages/server/scripts/build-sandbox.js`,
            { cause: error },
          );
        });
      const [adapter, xstate5, xstate4] = await Promise.all([
        readFile(this.#settings.adapterPath, "utf8"),
        vendorFile("xstate5.js"),
        vendorFile("xstate4.js"),
      ]);
      return {
        type: "init",
        adapter,
        vendor: { xstate5, xstate4 },
        allowPrivateNetworkFetch: this.#settings.allowPrivateNetworkFetch,
      } satisfies InitMessage;
    })();
    // A failed read (file not built yet) is retried by the next call rather than cached.
    this.#init.catch(() => {
      this.#init = undefined;
    });
    return this.#init;
  }

  /** Picks a process for the waiter and assigns the call to it; false if it must wait. */
  #assign(waiter: Waiter): boolean {
    let sandbox: SandboxProcess | undefined;
    try {
      sandbox = this.#choose(waiter);
    } catch (error) {
      // Starting a process can throw (e.g. out of file descriptors): that call fails, not the pool.
      waiter.reject(error);
      return true;
    }
    if (sandbox === undefined) return false;
    if (waiter.affinity !== undefined) {
      sandbox.affinities.add(waiter.affinity);
      this.#affinities.set(affinityKey(waiter.orgId, waiter.affinity), sandbox);
    }
    sandbox.lastUsedAt = Date.now();
    // A call that settles a held step must run where the step is: it is never handed back.
    const recallable = !settlesHeldStep(waiter.op);
    waiter.resolve({ sandbox, call: sandbox.begin(waiter.timeoutMs, recallable) });
    return true;
  }

  #choose({ orgId, affinity, op, init }: Waiter): SandboxProcess | undefined {
    if (affinity !== undefined) {
      const pinned = this.#affinities.get(affinityKey(orgId, affinity));
      if (pinned?.alive) return this.#retirement.takes(pinned, op) ? pinned : undefined;
    }
    let own: SandboxProcess | undefined;
    let owned = 0;
    for (const sandbox of this.#processes) {
      if (sandbox.orgId !== orgId || !sandbox.alive) continue;
      if (this.#retirement.isRetiring(sandbox)) continue;
      owned++;
      if (own === undefined || sandbox.load < own.load) own = sandbox;
    }
    if (own !== undefined && own.load === 0) return own;
    const { size, processesPerOrg } = this.#settings;
    if (this.#processes.size < size && owned < processesPerOrg) return this.#start(orgId, init);
    if (own !== undefined) return own;
    return this.#recycle(orgId, init);
  }

  /**
   * Every slot is taken by other orgs: kills the process sandbox-retirement.ts picks to go, if
   * any, and starts one for the org in its place; else the call waits.
   */
  #recycle(orgId: string, init: InitMessage): SandboxProcess | undefined {
    const victim = this.#retirement.processToRecycle(orgId);
    if (victim === undefined) return undefined;
    victim.kill({ kind: "reassigned" });
    return this.#start(orgId, init);
  }

  #start(orgId: string, init: InitMessage): SandboxProcess {
    if (this.#processes.size === 0) process.on("exit", this.#killOnExit);
    const sandbox = new SandboxProcess({
      orgId,
      launch: this.#launch,
      init,
      timing: this.#settings.timing,
      events: this.#events,
      logger: this.#logger,
    });
    this.#processes.add(sandbox);
    this.#stats.started++;
    return sandbox;
  }

  #onDeath(sandbox: SandboxProcess, cause: DeathCause, killed: boolean): void {
    this.#processes.delete(sandbox);
    this.#retirement.forget(sandbox);
    if (this.#processes.size === 0) process.off("exit", this.#killOnExit);
    for (const affinity of sandbox.affinities) {
      const key = affinityKey(sandbox.orgId, affinity);
      if (this.#affinities.get(key) === sandbox) this.#affinities.delete(key);
    }
    this.#count(cause, killed);
    const reason = describeCause(cause);
    this.#logger[cause.kind === "closed" || cause.kind === "reassigned" ? "info" : "warn"](
      `sandbox process ended: ${reason}`,
      { orgId: sandbox.orgId, pid: sandbox.pid, affinities: sandbox.affinities.size },
    );
    if (cause.kind !== "closed") {
      this.#emit(this.#lossListeners, {
        orgId: sandbox.orgId,
        affinities: [...sandbox.affinities],
        reason,
      });
    }
    this.#scheduleDrain();
  }

  #count(cause: DeathCause, killed: boolean): void {
    if (killed) this.#stats.killed++;
    else this.#stats.crashed++;
    if (cause.kind === "timeout") this.#stats.timeouts++;
    if (cause.kind === "unresponsive") this.#stats.unresponsive++;
    if (cause.kind === "memory") this.#stats.memoryExceeded++;
    if (cause.kind === "reassigned") this.#stats.orgSwitches++;
  }

  /** Serves waiting calls, later: deaths and settlements happen in the middle of other work. */
  #scheduleDrain(): void {
    if (this.#drainScheduled) return;
    if (this.#waiting.empty) return;
    this.#drainScheduled = true;
    // On the next turn, not as a microtask: a call just answered may be a step, whose caller
    // holds it (holdStep) in its continuation, before its process may be recycled.
    setImmediate(() => {
      this.#drainScheduled = false;
      if (this.#closed) return;
      this.#waiting.serve((waiter) => this.#assign(waiter));
      this.#retirement.endNeedless(this.#waiting.calls);
    });
  }

  #emit<T>(listeners: Set<(value: T) => void>, value: T): void {
    for (const listener of listeners) {
      try {
        listener(value);
      } catch (error) {
        this.#logger.error("a sandbox pool listener threw", { error });
      }
    }
  }
}

function affinityKey(orgId: string, affinity: string): string {
  return `${orgId}\u0000${affinity}`;
}
