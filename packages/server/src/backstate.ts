// Wires one Backstate node together: the store (embedded SQLite in a data dir, or PostgreSQL shared
// by any number of nodes), the update bus, the sandbox pool, the runtime and the engine.
// `backstate serve`, the tests and the benchmarks all start from here.
import { randomBytes } from "node:crypto";
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from "node:fs";
import { join } from "node:path";
import { Engine, type EngineOptions } from "./engine/engine.js";
import { silentLogger } from "./engine/logger.js";
import { LocalUpdateBus, type UpdateBus } from "./realtime/update-bus.js";
import { PostgresUpdateBus } from "./realtime/update-bus-postgres.js";
import { MachineRuntime } from "./runtime/machine-runtime.js";
import { SandboxPool } from "./runtime/sandbox-pool.js";
import { ADAPTER_PATH } from "./runtime/vendor-paths.js";
import { openPostgresStore, warnIfCommitsNotDurable } from "./store/postgres/index.js";
import { claimDataDir } from "./store/sqlite/data-dir-claim.js";
import { unusableDataDir } from "./store/sqlite/unusable-data-dir.js";
import { openSqliteStore, type OwnedSqliteStore } from "./store/sqlite/index.js";
import type { Store } from "./store/store.js";

/** PostgreSQL settings besides the URL; every node of a cluster must name the same schema. */
export type PostgresOptions = {
  /**
   * The schema the tables live in, created on first start: a lowercase identifier. Default: the
   * connection's search_path (normally `public`).
   */
  schema?: string;
  /** Connections this node's pool opens at most. Default 10. */
  poolSize?: number;
  /** The most commits one group-commit transaction takes. Default 64. */
  maxBatchSize?: number;
  /** How many group-commit transactions may run at once. Default 2 (1 with a pool under 6). */
  maxConcurrentBatches?: number;

  /** How long to wait for a pooled connection. Default 10000 ms. */
  connectionTimeoutMs?: number;
};

export type BackstateOptions = Partial<Omit<EngineOptions, "store" | "runtime">> & {
  /**
   * A postgres:// (or postgresql://) URL: the store is that PostgreSQL database, which any number
   * of nodes may share (they form one cluster). Without it, the store is SQLite in `dataDir`.
   */
  databaseUrl?: string;
  postgres?: PostgresOptions;
  /**
   * The folder of the SQLite database file (created when missing): required without
   * `databaseUrl`, unused with it (the server keeps no other files).
   */
  dataDir?: string;
  /**
   * SQLite only: hold the data dir for this process alone while it runs (a second server on it is
   * refused with DataDirInUseError), and so take every service lease found in it at start for
   * one of an earlier process, whose services died with it. `backstate serve` sets it; tests that
   * put two engines on one file, as two nodes, do not.
   */
  claimDataDir?: boolean;
  /** This node's name in a cluster's change notices. Default: random, different on every start. */
  nodeId?: string;
  sandboxes?: {
    size?: number;
    memoryLimitMb?: number;
    callTimeoutMs?: number;
    /** Machine versions each sandbox process keeps loaded (see SandboxPoolOptions). */
    maxVersionsPerProcess?: number;
    /**
     * Machine code's fetch may reach loopback, private and link-local addresses (services inside
     * the operator's network). Default false: only public addresses.
     */
    allowPrivateNetworkFetch?: boolean;
  };
  /** Wraps the store the engine uses (tests inject failures this way). */
  wrapStore?: (store: Store) => Store;
};

/** What either adapter is: the port, and its counters. */
export type BackstateStore = Store & { readonly stats: { readonly batches: number } };

export type Backstate = {
  engine: Engine;
  store: BackstateStore;
  /** Committed updates of every node of the cluster (just this one's on SQLite). */
  updates: UpdateBus;
  /** This node's id in its cluster's change notices. */
  nodeId: string;
  runtime: MachineRuntime;
  pool: SandboxPool;
  /** Stops the engine (in-flight events finish), then the sandboxes, the bus and the store. */
  close(): Promise<void>;
};

/** How long a self-sent event's backstop waits on a claimed data dir (see selfEventBackstopKey). */
const CLAIMED_SELF_EVENT_BACKSTOP_MS = 1_000;

/** Whether `url` names a PostgreSQL database (the only kind `databaseUrl` takes). */
export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url);
}

export async function openBackstate(options: BackstateOptions): Promise<Backstate> {
  const {
    databaseUrl,
    postgres,
    dataDir,
    nodeId = `node_${randomBytes(9).toString("base64url")}`,
    sandboxes,
    wrapStore,
    claimDataDir: _claimedInOpenStore,
    ...engineOptions
  } = options;
  const log = options.logger;
  const { store, updates, release } = await openStore(options, nodeId);

  let pool: SandboxPool | undefined;
  let runtime: MachineRuntime;
  let engine: Engine;
  try {
    pool = new SandboxPool({
      adapterPath: ADAPTER_PATH,
      ...sandboxes,
      ...(log ? { logger: log } : {}),
    });
    runtime = new MachineRuntime(
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
    engine = new Engine({
      // Alone on a claimed data dir, no other node can be stepping this node's self-sent events:
      // their backstops need not wait out a lease, so after a crash they come within a second.
      ...(options.claimDataDir && databaseUrl === undefined
        ? { selfEventBackstopMs: CLAIMED_SELF_EVENT_BACKSTOP_MS }
        : {}),
      ...engineOptions,
      nodeId,
      store: wrapStore ? wrapStore(store) : store,
      runtime,
    });
  } catch (error) {
    // An option refused here (the engine's, the pool's) must let go of what openStore opened: the
    // database, and the data dir's claim, which would refuse every later start in this process.
    await pool?.close();
    await updates.close();
    await store.close();
    release();
    throw error;
  }
  engine.onInstanceUpdate((update) => updates.publish(update));
  // Timers armed on other nodes: this node's scheduler may claim them too (claims exclude each
  // other), so a timer fires on time even when the node that armed it is gone. Other nodes'
  // commits and deletes make what this node remembers of those instances stale.
  updates.subscribe((update) => {
    if (update.kind === "timers-armed") engine.wakeTimers(update.dueAt);
    else if (update.kind === "changed") engine.changedElsewhere(update.key, update.sequence);
    // Another node deleted an instance: its services running here stop, as on the deleting node.
    // (This node's own deletes come by too, without a row id: forgetting once more is harmless.)
    else if (update.kind === "deleted") engine.deletedElsewhere(update.key, update.instanceId);
    // Another node paused an instance: its services running here stop, as on the pausing node.
    else if (update.kind === "paused") {
      engine.pausedElsewhere(update.key, update.sequence, update.instanceId);
    } else if (update.kind === "resync") {
      engine.missedChangesElsewhere();
      engine.wakeTimers();
    }
  });
  engine.start();
  // Alone on a claimed data dir: every service the store lists as pending died with the process
  // before (openStore ended its leases), so their error events are owed now, not at the next event.
  if (options.claimDataDir && databaseUrl === undefined) engine.deliverLostServicesOfPredecessor();
  return {
    engine,
    store,
    updates,
    nodeId,
    runtime,
    pool,
    async close() {
      await engine.close();
      await runtime.close();
      await updates.close();
      await store.close();
      release();
    },
  };
}

async function openStore(
  options: BackstateOptions,
  nodeId: string,
): Promise<{ store: BackstateStore; updates: UpdateBus; release: () => void }> {
  const logger = options.logger ?? silentLogger;
  const { databaseUrl } = options;
  if (databaseUrl === undefined) {
    if (options.dataDir === undefined) {
      throw new TypeError("give dataDir (for SQLite) or databaseUrl (for PostgreSQL)");
    }
    const databasePath = join(options.dataDir, "backstate.db");
    let claim: ReturnType<typeof claimDataDir> | undefined;
    let store: OwnedSqliteStore | undefined;
    try {
      // The database holds key and session secrets: only the server's user may read it.
      mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
      claim = options.claimDataDir ? claimDataDir(options.dataDir) : undefined;
      makePrivate(databasePath);
      store = openSqliteStore({ path: databasePath });
      await store.migrate();
      // Alone on the file: a lease in it is an earlier process's, and that process is gone (it
      // held the claim while it ran). Its services died with it; without this, their instances
      // would wait for the lease to run out before their error events are delivered. Likewise
      // the timers it had claimed: a delivery it committed deleted its timer in the same
      // transaction, so those still there never fired, and are due again now rather than when
      // the claim's lease (10 s) runs out.
      if (claim) {
        await store.endServiceLeases(nodeId, [], Number.MAX_SAFE_INTEGER);
        await store.releaseTimerClaims();
      }
    } catch (error) {
      await store?.close();
      claim?.release();
      throw unusableDataDir(options.dataDir, databasePath, error) ?? error;
    }
    return {
      store,
      updates: new LocalUpdateBus(logger),
      release: () => claim?.release(),
    };
  }

  if (!isPostgresUrl(databaseUrl)) {
    throw new TypeError("databaseUrl must be a postgres:// or postgresql:// URL");
  }
  const { schema, ...tuning } = options.postgres ?? {};
  const store = openPostgresStore({
    connectionString: databaseUrl,
    ...(schema === undefined ? {} : { schema }),
    ...tuning,
    nodeId,
  });
  const updates = new PostgresUpdateBus({ connectionString: databaseUrl, schema, nodeId, logger });
  try {
    await store.migrate();
    await warnIfCommitsNotDurable(store, logger);
    // Listening before the node serves anything: no change another node commits from now on is
    // missed by this node's subscribers.
    await updates.start();
  } catch (error) {
    await updates.close();
    await store.close();
    throw error;
  }
  return { store, updates, release: () => {} };
}

/**
 * Makes the database file (created empty when missing) readable by this user only, before SQLite
 * opens it: SQLite gives the -wal and -shm files it creates the database file's mode, and the
 * write-ahead log holds the same secrets. Those left by a crash are made private too.
 */
function makePrivate(databasePath: string): void {
  closeSync(openSync(databasePath, "a", 0o600));
  for (const path of [databasePath, `${databasePath}-wal`, `${databasePath}-shm`]) {
    if (existsSync(path)) chmodSync(path, 0o600);
  }
}
