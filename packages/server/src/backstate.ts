// Wires one Backstate node together: the SQLite store, the sandbox pool, the runtime and the
// engine. `backstate serve`, the tests and the benchmarks all start from here.
import { chmodSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { Engine, type EngineOptions } from "./engine/engine.js";
import { MachineRuntime } from "./runtime/machine-runtime.js";
import { SandboxPool } from "./runtime/sandbox-pool.js";
import { ADAPTER_PATH } from "./runtime/vendor-paths.js";
import { openSqliteStore, type SqliteStore } from "./store/sqlite/index.js";
import type { Store } from "./store/store.js";

export type BackstateOptions = Partial<Omit<EngineOptions, "store" | "runtime">> & {
  /** Folder for the database file; created when missing. */
  dataDir: string;
  sandboxes?: { size?: number; memoryLimitMb?: number; callTimeoutMs?: number };
  /** Wraps the store the engine uses (tests inject failures this way). */
  wrapStore?: (store: Store) => Store;
};

export type Backstate = {
  engine: Engine;
  store: SqliteStore;
  runtime: MachineRuntime;
  pool: SandboxPool;
  /** Stops the engine (in-flight events finish), then the sandboxes, then the store. */
  close(): Promise<void>;
};

export async function openBackstate(options: BackstateOptions): Promise<Backstate> {
  // The database holds key and session secrets: only the server's user may read it.
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  const databasePath = join(options.dataDir, "backstate.db");
  const store = openSqliteStore({ path: databasePath });
  await store.migrate();
  chmodSync(databasePath, 0o600);
  const log = options.logger;
  const pool = new SandboxPool({
    adapterPath: ADAPTER_PATH,
    ...options.sandboxes,
    ...(log ? { logger: log } : {}),
  });
  const runtime = new MachineRuntime(
    pool,
    async ({ orgId, machineName, versionId }) => {
      const version = await store.getMachineVersion(orgId, machineName, versionId);
      if (!version) throw new Error(`no code stored for machine version ${versionId}`);
      return version.code;
    },
    (level, message, fields) =>
      log?.[level === "warn" || level === "error" ? level : "info"](
        message,
        fields as Record<string, unknown>,
      ),
  );
  const { dataDir, sandboxes, wrapStore, ...engineOptions } = options;
  const engine = new Engine({
    ...engineOptions,
    store: wrapStore ? wrapStore(store) : store,
    runtime,
  });
  engine.start();
  return {
    engine,
    store,
    runtime,
    pool,
    async close() {
      await engine.close();
      await runtime.close();
      await store.close();
    },
  };
}
