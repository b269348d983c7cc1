// @backstate/server: the engine and what it runs on. The HTTP API and realtime arrive later.
export {
  isPostgresUrl,
  openBackstate,
  type Backstate,
  type BackstateOptions,
  type BackstateStore,
  type PostgresOptions,
} from "./backstate.js";
export { startServer, type RunningServer, type ServerOptions } from "./http/server.js";
export { ensureBootstrapAdmin, mintAdminSession, type Bootstrap } from "./auth/admin-sessions.js";
export { Engine, type EngineOptions, type InstanceAddress } from "./engine/engine.js";
export type { InstanceState } from "./engine/instance-state.js";
export { ManualClock, systemClock, type Clock } from "./engine/clock.js";
export { jsonLogger, silentLogger, type Logger } from "./engine/logger.js";
export { randomIds, type IdGenerator } from "./engine/ids.js";
export { MachineRuntime } from "./runtime/machine-runtime.js";
export { SandboxPool } from "./runtime/sandbox-pool.js";
export { openSqliteStore, type SqliteStore } from "./store/sqlite/index.js";
export { openPostgresStore, type PostgresStore } from "./store/postgres/index.js";
export type { BusUpdate, UpdateBus } from "./realtime/update-bus.js";
export type * from "./store/store.js";
export * from "./errors.js";
