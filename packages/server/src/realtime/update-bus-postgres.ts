// The update bus of a node in a PostgreSQL cluster. This node's updates go to its subscribers
// directly (the commit that made them already sent a notice to the other nodes); the notices of
// other nodes' commits, pauses and deletes arrive on a dedicated LISTEN connection, which reconnects when
// it breaks and then asks subscribers to resync, since notices sent meanwhile are lost.
import type { Logger } from "../engine/logger.js";
import { NoticeListener, type Notice } from "../store/postgres/index.js";
import { LocalUpdateBus } from "./update-bus.js";

export type PostgresUpdateBusOptions = {
  connectionString: string;
  /** The schema the cluster's store lives in (its change notices have a channel of their own). */
  schema: string | undefined;
  /** This node's id: the origin its store's notices carry, skipped here. */
  nodeId: string;
  logger: Logger;
  /** First wait before reconnecting (doubling up to 5 s). Default 100 ms. */
  reconnectDelayMs?: number;
  /** How often the listening connection is checked. Default 10 s. */
  heartbeatMs?: number;
  /** A monotonic clock, in milliseconds, for `notListeningSince`. Default performance.now. */
  now?: () => number;
};

export class PostgresUpdateBus extends LocalUpdateBus {
  readonly #listener: NoticeListener;
  readonly #nodeId: string;

  constructor(options: PostgresUpdateBusOptions) {
    super(options.logger);
    this.#nodeId = options.nodeId;
    this.#listener = new NoticeListener({
      connectionString: options.connectionString,
      schema: options.schema,
      logger: options.logger,
      onNotice: (notice) => this.#onNotice(notice),
      ownOrigin: options.nodeId,
      onReconnected: () => this.emit({ kind: "resync" }),
      // Names the node, for whoever looks at pg_stat_activity (at most 63 bytes are kept).
      applicationName: `backstate-listener ${options.nodeId}`,
      ...(options.reconnectDelayMs === undefined
        ? {}
        : { reconnectDelayMs: options.reconnectDelayMs }),
      ...(options.heartbeatMs === undefined ? {} : { heartbeatMs: options.heartbeatMs }),
      ...(options.now === undefined ? {} : { now: options.now }),
    });
  }

  /** Resolves once listening: from then on, no other node's change is missed. */
  start(): Promise<void> {
    return this.#listener.start();
  }

  /** Whether the listening connection is up right now. */
  get listening(): boolean {
    return this.#listener.listening;
  }

  override notListeningSince(): number | undefined {
    return this.#listener.notListeningSince;
  }

  override async close(): Promise<void> {
    await this.#listener.close();
    await super.close();
  }

  #onNotice(notice: Notice): void {
    // This node's own changes were published directly, with their records.
    if (notice.origin === this.#nodeId) return;
    for (const change of notice.changes) {
      switch (change.kind) {
        case "state":
          this.emit({ kind: "changed", key: change.key, sequence: change.sequence });
          break;
        case "deleted":
        case "paused":
          this.emit(change);
          break;
        case "unknown":
          this.emit({ kind: "resync" });
          break;
      }
      if (
        (change.kind === "state" || change.kind === "unknown") &&
        change.timersDueAt !== undefined
      ) {
        this.emit({ kind: "timers-armed", dueAt: change.timersDueAt });
      }
    }
  }
}
