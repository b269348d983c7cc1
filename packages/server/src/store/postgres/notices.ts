// Cross-node change notices on PostgreSQL. Every transaction that commits transitions, pauses or
// deletes an instance also sends a NOTIFY on its schema's channel (inside the transaction, so a notice goes
// out exactly when the changes commit, in commit order); every node LISTENs on a dedicated
// connection. A notice names its origin node (which skips its own) and the changes: keys and a
// sequence, never a snapshot, since NOTIFY payloads are limited to 8000 bytes. A group-commit
// batch sends one notice for all its commits (more when they do not fit in one payload).
import { createHash } from "node:crypto";
import pg from "pg";
import type { Logger } from "../../engine/logger.js";
import type { InstanceKey, TransitionCommit } from "../store.js";
import { checkSchemaName } from "./connection.js";
import { applySessionSettings } from "./session-settings.js";

export type Change =
  | {
      kind: "state";
      key: InstanceKey;
      sequence: number;
      /** The earliest due time of the timers the commit armed, if it armed any. */
      timersDueAt?: number;
    }
  /**
   * The instance's row `instanceId` was deleted: the services started for it are to stop on every
   * node, and only those (a row made again under the name has another id). Older servers sent no
   * id.
   */
  | { kind: "deleted"; key: InstanceKey; instanceId?: number }
  /**
   * The instance's row `instanceId` was paused at `sequence` (a pause commits no transition): the
   * services its steps up to that one started are to stop on every node, as they do on the node
   * that paused it. Older servers sent no id.
   */
  | { kind: "paused"; key: InstanceKey; sequence: number; instanceId?: number }
  /** A change too large to name (never expected: names are short); listeners reload everything. */
  | { kind: "unknown"; timersDueAt?: number };

export type Notice = { origin: string; changes: Change[] };

// PostgreSQL refuses payloads of 8000 bytes or more.
export const MAX_PAYLOAD_BYTES = 7999;
// What one change may take, so that it fits in a payload with any origin of up to 128 bytes.
const MAX_CHANGE_BYTES = 7800;
// Channel names are identifiers: at most 63 bytes.
const MAX_CHANNEL_LENGTH = 63;
const CHANNEL_PREFIX = "backstate_updates";

/**
 * The channel the nodes of one schema share. Channels are database-wide, so the schema is part of
 * the name: clusters on different schemas of one database do not hear each other.
 */
export function channelOf(schema: string | undefined): string {
  if (schema === undefined) return CHANNEL_PREFIX;
  checkSchemaName(schema);
  const plain = `${CHANNEL_PREFIX}_${schema}`;
  if (plain.length <= MAX_CHANNEL_LENGTH) return plain;
  return `${CHANNEL_PREFIX}_${createHash("sha256").update(schema).digest("hex").slice(0, 40)}`;
}

/** A node id as it starts every payload: a JSON string of at most 128 bytes. */
export function originPrefix(origin: string): string {
  const text = JSON.stringify(origin);
  if (Buffer.byteLength(text) > 130) throw new TypeError("a node id takes at most 128 bytes");
  return text;
}

/** The change a committed transition makes (it wrote `sequence`), encoded. */
export function commitChange(commit: TransitionCommit, sequence: number): string {
  const dueAt =
    commit.timersToArm.length > 0
      ? Math.min(...commit.timersToArm.map((timer) => timer.dueAt))
      : undefined;
  return encodeChange({
    kind: "state",
    key: commit.instance,
    sequence,
    ...(dueAt === undefined ? {} : { timersDueAt: dueAt }),
  });
}

// Compact JSON arrays: ["s", org, machine, instance, sequence, dueAt?], ["d", org, machine,
// instance, row id?], ["p", org, machine, instance, sequence, row id?], ["u", dueAt?]. A payload is
// [origin, change, change, …]. (A server that does not know a kind ignores the whole payload, so a
// pause goes alone; one that knows no row id of a delete or a pause reads it without the id.)
export function encodeChange(change: Change): string {
  let fields: unknown[];
  if (change.kind === "unknown") {
    fields = ["u"];
    if (change.timersDueAt !== undefined) fields.push(change.timersDueAt);
  } else {
    const { orgId, machineName, instanceName } = change.key;
    fields = [KIND_CODES[change.kind], orgId, machineName, instanceName];
    if (change.kind !== "deleted") fields.push(change.sequence);
    else if (change.instanceId !== undefined) fields.push(change.instanceId);
    if (change.kind === "state" && change.timersDueAt !== undefined) {
      fields.push(change.timersDueAt);
    }
    if (change.kind === "paused" && change.instanceId !== undefined) {
      fields.push(change.instanceId);
    }
  }
  const text = JSON.stringify(fields);
  if (Buffer.byteLength(text) <= MAX_CHANGE_BYTES || change.kind === "unknown") return text;
  const timersDueAt = change.kind === "state" ? change.timersDueAt : undefined;
  return encodeChange({ kind: "unknown", ...(timersDueAt === undefined ? {} : { timersDueAt }) });
}

const KIND_CODES = { state: "s", deleted: "d", paused: "p" } as const;

/**
 * The payloads that carry `changes` (encoded), as few as fit. The commit function (see
 * commit-function.ts) packs its payloads the same way, in SQL.
 */
export function payloads(origin: string, changes: readonly string[]): string[] {
  const prefix = originPrefix(origin);
  const out: string[] = [];
  let current = "";
  for (const change of changes) {
    if (
      current !== "" &&
      Buffer.byteLength(current) + Buffer.byteLength(change) + 2 > MAX_PAYLOAD_BYTES
    ) {
      out.push(`${current}]`);
      current = "";
    }
    current = current === "" ? `[${prefix},${change}` : `${current},${change}`;
  }
  if (current !== "") out.push(`${current}]`);
  return out;
}

/** The notice a payload carries, or undefined for one this server does not understand. */
export function decode(payload: string): Notice | undefined {
  let fields: unknown;
  try {
    fields = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (!Array.isArray(fields)) return undefined;
  const [origin, ...encoded] = fields as unknown[];
  if (typeof origin !== "string" || encoded.length === 0) return undefined;
  const changes: Change[] = [];
  for (const entry of encoded) {
    const change = decodeChange(entry);
    if (change === undefined) return undefined;
    changes.push(change);
  }
  return { origin, changes };
}

function decodeChange(entry: unknown): Change | undefined {
  if (!Array.isArray(entry)) return undefined;
  // The fifth field is a sequence, or a deleted row's id; the sixth a due time, or a paused row's id.
  const [kind, orgId, machineName, instanceName, fifth, sixth] = entry as unknown[];
  if (kind === "u") {
    const timersDueAt = orgId;
    return { kind: "unknown", ...(typeof timersDueAt === "number" ? { timersDueAt } : {}) };
  }
  if (typeof orgId !== "string" || typeof machineName !== "string") return undefined;
  if (typeof instanceName !== "string") return undefined;
  const key = { orgId, machineName, instanceName };
  if (kind === "d") {
    return {
      kind: "deleted",
      key,
      ...(typeof fifth === "number" ? { instanceId: fifth } : {}),
    };
  }
  if (typeof fifth !== "number") return undefined;
  const sequence = fifth;
  if (kind === "p") {
    return {
      kind: "paused",
      key,
      sequence,
      ...(typeof sixth === "number" ? { instanceId: sixth } : {}),
    };
  }
  if (kind !== "s") return undefined;
  return {
    kind: "state",
    key,
    sequence,
    ...(typeof sixth === "number" ? { timersDueAt: sixth } : {}),
  };
}

export type NoticeListenerOptions = {
  connectionString: string;
  /** The schema whose channel to listen on (undefined: the default channel). */
  schema: string | undefined;
  logger: Logger;
  onNotice: (notice: Notice) => void;
  /** The connection was lost and is back: notices sent meanwhile were missed. */
  onReconnected: () => void;
  /** First wait before reconnecting; doubles up to `maxReconnectDelayMs`. Default 100 ms. */
  reconnectDelayMs?: number;
  /** Default 5000 ms. */
  maxReconnectDelayMs?: number;
  /** How often the connection is checked with a query; one that fails is replaced. Default 10 s. */
  heartbeatMs?: number;
  /** How long connecting (and a heartbeat) may take. Default 10000 ms. */
  timeoutMs?: number;
  /** The connection's application_name (pg_stat_activity shows it). Default "backstate-listener". */
  applicationName?: string;
  /** A monotonic clock, in milliseconds, for `notListeningSince`. Default performance.now. */
  now?: () => number;
  /**
   * This node's id: its own notices, which name it first, are skipped unread. A node hears every
   * batch it commits come back, and its owner skips them anyway (it published those changes
   * directly); reading them would cost a JSON parse per batch for nothing.
   */
  ownOrigin?: string;
};

/**
 * One dedicated connection LISTENing on a schema's channel. When it breaks (the server restarted,
 * the backend was terminated, the network went away: noticed by the socket or by the heartbeat)
 * it is replaced, with growing waits between attempts, and `onReconnected` tells the owner that
 * notices may have been missed.
 */
export class NoticeListener {
  readonly #options: NoticeListenerOptions;
  readonly #channel: string;
  /** The opening of this node's own payloads (see ownOrigin), if it is to skip them. */
  readonly #ownPrefix: string | undefined;
  #client: pg.Client | undefined;
  #retry: NodeJS.Timeout | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #delayMs: number;
  #closed = false;
  /** When the current connection was lost; undefined while listening (and before start). */
  #lostAt: number | undefined;

  constructor(options: NoticeListenerOptions) {
    this.#options = options;
    this.#channel = channelOf(options.schema);
    // Every payload opens with its origin as payloads() writes it, then a change.
    // (originPrefix's text, without its length check: an id too long to send is no reason to fail.)
    this.#ownPrefix =
      options.ownOrigin === undefined ? undefined : `[${JSON.stringify(options.ownOrigin)},`;
    this.#delayMs = options.reconnectDelayMs ?? 100;
  }

  /** Whether the connection is up and listening right now. */
  get listening(): boolean {
    return this.#client !== undefined;
  }

  /**
   * Since when (on the `now` clock) the listener has been trying to get its connection back, or
   * undefined while it listens: how long this node may have been missing other nodes' changes.
   */
  get notListeningSince(): number | undefined {
    return this.#closed ? undefined : this.#lostAt;
  }

  /** Connects and listens; rejects (and stays closed) when the first attempt fails. */
  async start(): Promise<void> {
    await this.#connect();
    const every = this.#options.heartbeatMs ?? 10_000;
    this.#heartbeat = setInterval(() => this.#check(), every);
    this.#heartbeat.unref();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retry);
    clearInterval(this.#heartbeat);
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => {});
  }

  async #connect(): Promise<void> {
    const timeoutMs = this.#options.timeoutMs ?? 10_000;
    const client = new pg.Client({
      connectionString: this.#options.connectionString,
      connectionTimeoutMillis: timeoutMs,
      query_timeout: timeoutMs,
      keepAlive: true,
      application_name: this.#options.applicationName ?? "backstate-listener",
    });
    // Notices may arrive as soon as LISTEN has run, before this connection is made current.
    let retired = false;
    client.on("notification", (message) => {
      if (retired || this.#closed || message.channel !== this.#channel) return;
      if (this.#ownPrefix !== undefined && message.payload?.startsWith(this.#ownPrefix)) return;
      const notice = message.payload === undefined ? undefined : decode(message.payload);
      if (notice === undefined) {
        this.#options.logger.warn("ignoring a change notice this server does not understand", {
          payload: message.payload,
        });
        return;
      }
      this.#options.onNotice(notice);
    });
    const lost = (error: unknown) => {
      if (retired) return;
      retired = true;
      this.#lost(client, error);
    };
    client.on("error", lost);
    client.on("end", () => lost(new Error("the connection ended")));
    try {
      await client.connect();
      await applySessionSettings(client, timeoutMs);
      // channelOf made a plain lowercase identifier: quoting it is enough.
      await client.query(`LISTEN "${this.#channel}"`);
    } catch (error) {
      retired = true;
      client.on("error", () => {});
      await client.end().catch(() => {});
      throw error;
    }
    if (this.#closed || retired) {
      retired = true;
      await client.end().catch(() => {});
      if (!this.#closed) throw new Error("the connection ended while it was set up");
      return;
    }
    this.#client = client;
    this.#lostAt = undefined;
  }

  #check(): void {
    const client = this.#client;
    if (client === undefined) return;
    // A failed query does not always end the connection (a timeout does not): end it here.
    client.query("SELECT 1").catch((error: unknown) => client.emit("error", error));
  }

  /** The current connection broke (each connection reports this once). */
  #lost(client: pg.Client, error: unknown): void {
    if (client !== this.#client) return;
    this.#client = undefined;
    this.#lostAt = (this.#options.now ?? performance.now.bind(performance))();
    client.on("error", () => {});
    client.end().catch(() => {});
    if (this.#closed) return;
    this.#options.logger.warn("lost the change-notice connection; reconnecting", {
      error: error instanceof Error ? error.message : String(error),
    });
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#closed) return;
    const delay = this.#delayMs;
    this.#delayMs = Math.min(delay * 2, this.#options.maxReconnectDelayMs ?? 5_000);
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      this.#connect().then(
        () => {
          if (this.#closed) return;
          this.#delayMs = this.#options.reconnectDelayMs ?? 100;
          this.#options.logger.info("the change-notice connection is back");
          this.#options.onReconnected();
        },
        (error: unknown) => {
          this.#options.logger.warn("could not reconnect the change-notice connection", {
            error: error instanceof Error ? error.message : String(error),
          });
          this.#scheduleReconnect();
        },
      );
    }, delay);
  }
}
