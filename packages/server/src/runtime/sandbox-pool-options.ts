// The sandbox pool's options: what each one means, its check and its default, including the
// defaults drawn from others (a process's memory caps, its heartbeat and startup budgets).
import { availableParallelism } from "node:os";
import { DEFAULT_CHILD_ENTRY } from "./sandbox-launch.js";
import { consoleWarningLogger, type SandboxLogger } from "./sandbox-logger.js";
import type { Timing } from "./sandbox-process.js";

export type SandboxPoolOptions = {
  /** Absolute path of the adapter script (an IIFE defining `__backstate_install`). */
  adapterPath: string;
  /** How many sandbox processes may run at once. Default 2. */
  size?: number;
  /** Most processes one org's calls spread over. Default: the cores left besides the server's, at least 1. */
  processesPerOrg?: number;
  /** The V8 heap cap of each process, in MB. Default 128. */
  memoryLimitMb?: number;
  /**
   * The cap on each process's resident memory, in MB, which also counts ArrayBuffers, code and
   * stacks (Linux only). Default twice the heap cap plus 128. It is also the process's data limit
   * (RLIMIT_DATA): an allocation past it fails at once, rather than at the next check.
   */
  maxResidentMb?: number;
  /**
   * How many machine versions a process keeps loaded. Each holds its bundle and its own XState
   * in a context; past this many, the least recently used ones that nothing lives in any more
   * are dropped (and loaded again if called again), so a process does not grow with every
   * version it ever ran or checked. Versions in use are kept beyond it. Default 16.
   */
  maxVersionsPerProcess?: number;
  /**
   * How long a process serves its org, at least, before it gives up its slot to another org whose
   * calls wait for one: from then, a process retiring for another org hands back the calls it has
   * not started, and goes once the one it runs is answered. Shorter, a waiting org is served
   * sooner; longer, two busy orgs sharing a slot switch less often (a switch costs a process start
   * and the loading of code). Default 1000.
   */
  orgTurnMs?: number;
  /** The budget of one call, in milliseconds, unless the call sets its own. Default 5000. */
  callTimeoutMs?: number;
  /**
   * How long a process retiring for another org may keep steps held (see holdStep) before it
   * goes regardless, losing their effects. Default twice callTimeoutMs, at least 10 s.
   */
  retireWithinMs?: number;
  /**
   * Machine code's fetch may connect to loopback, private, link-local and other non-public
   * addresses, for operators whose machines call services inside their own network. Default
   * false: such a fetch fails as a network error would, and nothing is sent.
   */
  allowPrivateNetworkFetch?: boolean;
  logger?: SandboxLogger;
  /** Another sandbox entry script, for tests; it is confined the same way, to its directory. */
  childEntry?: string;
};

/** The pool's options checked, with every default filled in. */
export type SandboxPoolSettings = {
  adapterPath: string;
  allowPrivateNetworkFetch: boolean;
  size: number;
  processesPerOrg: number;
  memoryLimitMb: number;
  maxResidentMb: number;
  maxVersionsPerProcess: number;
  orgTurnMs: number;
  retireWithinMs: number;
  timing: Timing;
  logger: SandboxLogger;
  childEntry: string;
};

/** Checks the options (TypeError on misuse) and fills in their defaults. */
export function poolSettings(options: SandboxPoolOptions): SandboxPoolSettings {
  if (typeof options.adapterPath !== "string" || options.adapterPath === "") {
    throw new TypeError("adapterPath must be the path of the adapter script");
  }
  const size = positiveInteger("size", options.size, 2);
  // One org's calls gain nothing from more processes than there are spare cores: the server's
  // own thread needs one, and more sandboxes than cores only take turns on them.
  const processesPerOrg = positiveInteger(
    "processesPerOrg",
    options.processesPerOrg,
    Math.max(1, Math.min(size, availableParallelism() - 1)),
  );
  const memoryLimitMb = positiveInteger("memoryLimitMb", options.memoryLimitMb, 128);
  const maxResidentMb = positiveInteger(
    "maxResidentMb",
    options.maxResidentMb,
    2 * memoryLimitMb + 128,
  );
  const callTimeoutMs = positiveInteger("callTimeoutMs", options.callTimeoutMs, 5000);
  return {
    adapterPath: options.adapterPath,
    allowPrivateNetworkFetch: options.allowPrivateNetworkFetch === true,
    size,
    processesPerOrg,
    memoryLimitMb,
    maxResidentMb,
    maxVersionsPerProcess: positiveInteger(
      "maxVersionsPerProcess",
      options.maxVersionsPerProcess,
      16,
    ),
    orgTurnMs: positiveInteger("orgTurnMs", options.orgTurnMs, 1000),
    retireWithinMs: positiveInteger(
      "retireWithinMs",
      options.retireWithinMs,
      Math.max(10_000, 2 * callTimeoutMs),
    ),
    timing: {
      callTimeoutMs,
      heartbeatMs: Math.min(1000, Math.max(50, Math.round(callTimeoutMs / 5))),
      startupTimeoutMs: Math.max(10_000, 2 * callTimeoutMs),
      maxResidentBytes: maxResidentMb * 1024 * 1024,
    },
    logger: options.logger ?? consoleWarningLogger,
    childEntry: options.childEntry ?? DEFAULT_CHILD_ENTRY,
  };
}

/** A setting that must be a positive integer if given (else a TypeError); else its default. */
export function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new TypeError(`${name} must be a positive integer`);
  }
  return value;
}
