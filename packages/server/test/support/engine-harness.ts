// A whole engine for tests: a SQLite store (file-backed, so it can be reopened), a sandbox pool,
// the runtime and the engine, with one org ready to hold machines.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openBackstate, type BackstateOptions } from "../../src/backstate.js";
import type { Engine, EngineOptions } from "../../src/engine/engine.js";
import { ManualClock, type Clock } from "../../src/engine/clock.js";
import type { Logger } from "../../src/engine/logger.js";
import type { MachineRuntime } from "../../src/runtime/machine-runtime.js";
import type { SandboxPool } from "../../src/runtime/sandbox-pool.js";
import type { SqliteStore } from "../../src/store/sqlite/index.js";
import type { Store } from "../../src/store/store.js";
import { bundleFixture, type BundleStyle } from "./bundles.js";

export const ORG = "org_test0000000000000000001";
export const OTHER_ORG = "org_test0000000000000000002";

export type HarnessOptions = Partial<Omit<EngineOptions, "store" | "runtime">> &
  Pick<BackstateOptions, "databaseUrl" | "postgres" | "claimDataDir"> & {
    /** Wraps the store, e.g. to make commits fail. */
    wrapStore?: (store: Store) => Store;
    callTimeoutMs?: number;
    memoryLimitMb?: number;
    /** Sandbox processes (default 2) and the versions each keeps loaded (the pool's default). */
    sandboxSize?: number;
    maxVersionsPerProcess?: number;
    /** Machines may fetch from local servers (tests that observe effects through one). */
    allowPrivateNetworkFetch?: boolean;
  };

export type Harness = {
  engine: Engine;
  store: SqliteStore;
  runtime: MachineRuntime;
  pool: SandboxPool;
  clock: Clock;
  logs: Array<{ level: string; message: string; fields?: Record<string, unknown> }>;
  /** Creates a machine from a fixture bundle and makes that its current version. */
  deploy(
    fixture: string,
    style: BundleStyle,
    machineName?: string,
    orgId?: string,
  ): Promise<string>;
  /** Closes the engine and pool (not the store, unless `all`); the data dir stays for a restart. */
  stop(): Promise<void>;
  /** A new engine and pool on the same database file: a restart. */
  restart(options?: HarnessOptions): Promise<Harness>;
  /** Removes everything, including the data dir. */
  dispose(): Promise<void>;
};

export function manualClock(): ManualClock {
  return new ManualClock();
}

export async function startHarness(
  options: HarnessOptions = {},
  dataDir?: string,
): Promise<Harness> {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), "backstate-engine-"));
  const logs: Harness["logs"] = [];
  const record = (level: string) => (message: string, fields?: Record<string, unknown>) =>
    logs.push({ level, message, ...(fields ? { fields } : {}) });
  const logger: Logger = {
    debug: record("debug"),
    info: record("info"),
    warn: record("warn"),
    error: record("error"),
  };
  const {
    callTimeoutMs,
    memoryLimitMb,
    allowPrivateNetworkFetch,
    sandboxSize,
    maxVersionsPerProcess,
    ...rest
  } = options;
  const clock = options.clock ?? new ManualClock();
  const node = await openBackstate({
    logger,
    ...rest,
    clock,
    dataDir: dir,
    sandboxes: {
      size: sandboxSize ?? 2,
      ...(maxVersionsPerProcess === undefined ? {} : { maxVersionsPerProcess }),
      memoryLimitMb: memoryLimitMb ?? 128,
      callTimeoutMs: callTimeoutMs ?? 5000,
      allowPrivateNetworkFetch: allowPrivateNetworkFetch === true,
    },
  });
  const { engine, store, runtime, pool } = node;
  if (!(await store.getOrg(ORG))) {
    await store.createOrg({ id: ORG, name: "test", createdAt: Date.now() });
    await store.createOrg({ id: OTHER_ORG, name: "other", createdAt: Date.now() });
  }
  let stopped = false;
  const harness: Harness = {
    engine,
    store,
    runtime,
    pool,
    clock,
    logs,
    async deploy(
      fixture,
      style,
      machineName = fixture.replace(/\.js$/, "").replace(/[^A-Za-z0-9_-]/g, "-"),
      orgId = ORG,
    ) {
      const code = await bundleFixture(fixture, style);
      if (!(await store.getMachine(orgId, machineName)))
        await engine.createMachine(orgId, machineName);
      await engine.createMachineVersion({ orgId, machineName, code, makeCurrent: true });
      return machineName;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await node.close();
    },
    async restart(next = options) {
      await harness.stop();
      return startHarness(next, dir);
    },
    async dispose() {
      await harness.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return harness;
}
