// The cap on the connections one node's HTTP server holds at once, API requests and realtime
// sockets alike. Past it, a connection idle for longer than the keep-alive time clients were told
// makes room; failing that, the newcomer is answered 503 at once and closed. The connections
// already open keep working, and room comes back as they close. Under the cap, each client may
// hold only its share (connections-per-address.ts): past it, its own connection idle for longer
// still makes room for its newcomer; failing that, the newcomer is answered 429.
import { readFileSync } from "node:fs";
import { STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { Logger } from "../engine/logger.js";
import { silentLogger } from "../engine/logger.js";
import { BackstateError } from "../errors.js";
import { ConnectionsPerAddress } from "./connections-per-address.js";
import { errorResponse } from "./error-response.js";

/** The most connections a node holds by default, when the open-file limit leaves room for them. */
export const DEFAULT_MAX_CONNECTIONS = 25_000;

export type ConnectionCapOptions = {
  maxConnections: number;
  /** Idle this long, a connection may be closed to make room for a new one. */
  reclaimIdleAfterMs: number;
  /**
   * Idle this long, a client's connection may be closed to make room for the same client's new
   * one when it is at its share. Default reclaimIdleAfterMs.
   */
  reclaimOwnIdleAfterMs?: number;
  /**
   * Still sending one request this long (its headers are in, its body is not), a connection may
   * be closed to make room when none is idle. Default SLOW_SENDER_MS.
   */
  reclaimSendingAfterMs?: number;
  /**
   * The most connections one client (an IPv4 address, an IPv6 /64) holds at once, so that no one
   * client can keep the others out; 0: no limit. Clients on loopback and on private networks
   * (proxies, most likely) are not limited unless limitLocalAddresses. Default 0.
   */
  maxConnectionsPerAddress?: number;
  /** Limit local clients too (tests: theirs are all on loopback). */
  limitLocalAddresses?: boolean;
  now: () => number;
  logger: Logger;
};

/**
 * Refused connections still waiting for their 503 to go out. Past this many (a flood), more are
 * closed without one: each waiting one holds a file descriptor, taken from the reserve that
 * defaultMaxConnections keeps under the open-file limit.
 */
const MAX_REFUSING = 32;
/** How long a refused connection may take to read its 503 before it is cut. */
const REFUSAL_LINGER_MS = 2_000;
/**
 * How long a request may take to arrive whole before its connection can make room at the cap.
 * Without it, clients trickling request bodies (an unauthenticated POST /tokens reads its body
 * before any check) held their slots for node's requestTimeout, 300 s, and could keep every
 * other client out. A legitimate upload over a slow link is cut only when the node is at its cap.
 */
export const SLOW_SENDER_MS = 10_000;
/** At most one log line of each kind about the cap this often, however many clients it meets. */
const LOG_EVERY_MS = 60_000;

/** The whole answer a refused connection gets, written straight to its socket. */
function refusal(error: BackstateError): string {
  const { status, body } = errorResponse(error, silentLogger);
  const text = JSON.stringify(body);
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
    "content-type: application/json\r\n" +
    "access-control-allow-origin: *\r\n" +
    "retry-after: 1\r\n" +
    `content-length: ${Buffer.byteLength(text)}\r\n` +
    "connection: close\r\n\r\n" +
    text
  );
}

const AT_CAP = refusal(
  new BackstateError(
    "too-many-connections",
    "the server holds as many connections as it may; try again shortly",
  ),
);
const AT_SHARE = refusal(
  new BackstateError(
    "too-many-connections-from-address",
    "your address holds as many connections as one client may; close some, or try again shortly",
  ),
);

/**
 * Puts the cap on `server`: every new connection passes it before node's HTTP handling sees it.
 * Call before the realtime endpoint attaches, and before the server listens.
 */
export function capConnections(server: Server, options: ConnectionCapOptions): void {
  const { maxConnections, reclaimIdleAfterMs, now, logger } = options;
  const reclaimOwnIdleAfterMs = options.reclaimOwnIdleAfterMs ?? reclaimIdleAfterMs;
  const reclaimSendingAfterMs = options.reclaimSendingAfterMs ?? SLOW_SENDER_MS;
  if (!(Number.isSafeInteger(maxConnections) && maxConnections >= 1)) {
    throw new TypeError("maxConnections must be a whole number, 1 or more");
  }
  const maxConnectionsPerAddress = options.maxConnectionsPerAddress ?? 0;
  const perAddress = new ConnectionsPerAddress({
    maxPerAddress: maxConnectionsPerAddress,
    limitLocal: options.limitLocalAddresses ?? false,
  });
  // node:http serves a connection from its own 'connection' listener; admitted ones are handed
  // to it, refused ones never reach it (it would parse their requests and answer them too).
  const [serve, ...others] = server.listeners("connection");
  if (serve === undefined || others.length > 0) {
    throw new TypeError("capConnections needs a fresh node:http server");
  }
  server.removeListener("connection", serve as (...args: unknown[]) => void);

  /**
   * Every connection held: its requests in flight (-1: a WebSocket now, never idle), the client
   * whose share it counts against (if any) and how to give that place back.
   */
  const held = new Map<Duplex, { inFlight: number; client?: string; release: () => void }>();
  /** The idle ones and since when: a Map keeps insertion order, so the longest idle is first. */
  const idle = new Map<Duplex, number>();
  /** The same, for each client with a share: its own idle connections, longest idle first. */
  const idleOf = new Map<string, Map<Duplex, number>>();
  /**
   * Connections whose request was under way when last seen, oldest request first. Kept loosely:
   * an entry whose request has since arrived whole is dropped only when reclaimSender reaches it.
   */
  const sending = new Map<Duplex, { since: number; request: IncomingMessage }>();
  let refusing = 0;

  /** A line logged at most once per LOG_EVERY_MS, however often it is called. */
  const rateLimited = (level: "info" | "warn", message: string) => {
    let loggedAt = -Infinity;
    return (fields: Record<string, unknown>) => {
      if (now() - loggedAt < LOG_EVERY_MS) return;
      loggedAt = now();
      logger[level](message, fields);
    };
  };
  const warnAtCap = rateLimited("warn", "at the connection cap: refusing new connections");
  const warnAtShare = rateLimited(
    "warn",
    "a client holds its share of connections: refusing its new ones",
  );
  // Closing a connection to admit another is no failure, but an operator sizing the cap (or
  // wondering why clients see connections close) should hear of it.
  const noteIdleClosedAtCap = rateLimited(
    "info",
    "at the connection cap: closing the longest idle connections to admit new ones",
  );
  const noteSenderClosedAtCap = rateLimited(
    "info",
    "at the connection cap: closing connections whose request has been arriving too long",
  );
  const noteOwnIdleClosedAtShare = rateLimited(
    "info",
    "a client at its share of connections: closing its own longest idle ones to admit its new ones",
  );

  const markIdle = (socket: Duplex, since: number) => {
    idle.set(socket, since);
    const client = held.get(socket)?.client;
    if (client === undefined) return;
    let own = idleOf.get(client);
    if (own === undefined) idleOf.set(client, (own = new Map<Duplex, number>()));
    own.set(socket, since);
  };

  const markBusy = (socket: Duplex) => {
    idle.delete(socket);
    const client = held.get(socket)?.client;
    const own = client === undefined ? undefined : idleOf.get(client);
    if (own === undefined) return;
    own.delete(socket);
    // Deleted when empty: a client that has gone takes no memory.
    if (own.size === 0) idleOf.delete(client!);
  };

  /** Forgets a connection and gives its place back at once (its 'close' comes later). */
  const forget = (socket: Duplex) => {
    markBusy(socket);
    sending.delete(socket);
    held.get(socket)?.release();
    held.delete(socket);
  };

  const reclaim = (socket: Duplex) => {
    forget(socket);
    socket.destroy();
  };

  /** Closes the longest idle connection of `among`, if idle for `afterMs` at least. */
  const reclaimIdle = (among: Map<Duplex, number>, afterMs: number): boolean => {
    const oldest = among.entries().next();
    if (oldest.done || now() - oldest.value[1] < afterMs) return false;
    reclaim(oldest.value[0]);
    return true;
  };

  /** Closes the connection whose request has been arriving longest, if for too long. */
  const reclaimSender = (): boolean => {
    for (const [socket, { since, request }] of sending) {
      // Arrived whole (its answer may take long, as a service settles: that is no slow sender).
      if (request.complete) {
        sending.delete(socket);
        continue;
      }
      if (now() - since < reclaimSendingAfterMs) return false;
      reclaim(socket);
      noteSenderClosedAtCap({ maxConnections });
      return true;
    }
    return false;
  };

  const refuseAtCap = (socket: Duplex) => {
    warnAtCap({ maxConnections });
    refuse(socket, AT_CAP);
  };

  const refuseAtShare = (socket: Duplex, client: string) => {
    warnAtShare({ client, maxConnectionsPerAddress });
    refuse(socket, AT_SHARE);
  };

  const refuse = (socket: Duplex, answer: string) => {
    socket.on("error", () => socket.destroy());
    if (refusing >= MAX_REFUSING) return void socket.destroy();
    refusing++;
    const cut = setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS);
    socket.once("close", () => {
      refusing--;
      clearTimeout(cut);
    });
    socket.end(answer);
    // What the client sent is read and dropped: a socket closed with bytes unread is reset, and
    // the reset could reach the client before the 503 (or 429) does.
    socket.resume();
  };

  server.on("connection", (socket: Duplex) => {
    // The client's share first: one past it must not close anyone else's idle connection for
    // nothing. Its own, idle well past the keep-alive time it was told, makes room for it: a
    // client (a proxy, the users behind one NAT address) that opens a new connection rather than
    // reuse an old one is not refused for connections it has stopped using.
    // The address is the peer's as the kernel has it; no header a client sends can change it.
    const remoteAddress = (socket as Partial<Socket>).remoteAddress;
    let admission = perAddress.admit(remoteAddress);
    // Only its own idle connections: a client with none closes nothing.
    const ownIdle = admission.admitted ? undefined : idleOf.get(admission.client);
    if (ownIdle !== undefined && reclaimIdle(ownIdle, reclaimOwnIdleAfterMs)) {
      noteOwnIdleClosedAtShare({ client: admission.client, maxConnectionsPerAddress });
      admission = perAddress.admit(remoteAddress);
    }
    if (!admission.admitted) return refuseAtShare(socket, admission.client);
    if (held.size >= maxConnections) {
      if (reclaimIdle(idle, reclaimIdleAfterMs)) noteIdleClosedAtCap({ maxConnections });
      else if (!reclaimSender()) {
        admission.release();
        return refuseAtCap(socket);
      }
    }
    held.set(socket, {
      inFlight: 0,
      ...(admission.client === undefined ? {} : { client: admission.client }),
      release: admission.release,
    });
    // A fresh connection counts as idle: one that never sends a request makes room too.
    markIdle(socket, now());
    // Forgotten on 'close', which every end comes to (reclaimed, cut or closed by the client);
    // a reclaimed one was forgotten already, its place given back as it was reclaimed.
    socket.once("close", () => forget(socket));
    serve.call(server, socket);
  });

  server.on("request", (incoming: IncomingMessage, outgoing: ServerResponse) => {
    const connection = held.get(incoming.socket);
    if (connection === undefined) return;
    connection.inFlight++;
    markBusy(incoming.socket);
    if (!incoming.complete) {
      // Re-inserted, so the Map stays in the order the requests began.
      sending.delete(incoming.socket);
      sending.set(incoming.socket, { since: now(), request: incoming });
    }
    // 'close' comes once the answer is written, or once the connection is gone.
    outgoing.once("close", () => {
      if (--connection.inFlight === 0 && held.has(incoming.socket)) {
        markIdle(incoming.socket, now());
      }
    });
  });

  server.on("upgrade", (_request: IncomingMessage, socket: Duplex) => {
    const connection = held.get(socket);
    if (connection !== undefined) connection.inFlight = -1;
    markBusy(socket);
    sending.delete(socket);
    // Nobody else takes upgrades (no realtime endpoint): the socket would hang, unanswered.
    if (server.listenerCount("upgrade") === 1) socket.destroy();
  });
}

/**
 * The default cap: DEFAULT_MAX_CONNECTIONS, or fewer when the process may not open that many
 * files. Past the open-file limit, accepting fails (EMFILE) and new clients are dropped without
 * an answer, and so is everything else that needs a descriptor (a sandbox process, a database
 * connection, a JWKS fetch): a tenth of the limit, at least 64, is kept for those.
 */
export function defaultMaxConnections(openFileLimit: number | undefined): number {
  if (openFileLimit === undefined) return DEFAULT_MAX_CONNECTIONS;
  const reserve = Math.max(64, Math.ceil(openFileLimit / 10));
  return Math.max(1, Math.min(DEFAULT_MAX_CONNECTIONS, openFileLimit - reserve));
}

/** The process's soft limit on open files, where the system says (Linux); undefined otherwise. */
export function readOpenFileLimit(): number | undefined {
  try {
    const limits = readFileSync("/proc/self/limits", "utf8");
    const soft = /^Max open files\s+(\d+|unlimited)/m.exec(limits)?.[1];
    return soft === undefined || soft === "unlimited" ? undefined : Number(soft);
  } catch {
    return undefined;
  }
}
