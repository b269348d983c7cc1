// `/rt`: the WebSocket endpoint on the API's HTTP server. The token (and an admin session's org)
// arrive in the query string, because browsers cannot set headers on a WebSocket; they are
// checked before the upgrade, so a refused client gets an HTTP status, never an open-then-closed
// socket (the official client would reconnect to that in a tight loop).
import { STATUS_CODES, type IncomingMessage, type Server } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import type { Authenticator } from "../auth/authenticator.js";
import { ORG_HEADER, resolvePrincipal } from "../auth/resolve-principal.js";
import type { Principal } from "../auth/principal.js";
import { BackstateError } from "../errors.js";
import type { Engine } from "../engine/engine.js";
import type { Logger } from "../engine/logger.js";
import { readApiRequest, type ApiRequest } from "../http/api-request.js";
import { errorResponse } from "../http/error-response.js";
import type { Store } from "../store/store.js";
import { Connection, type ConnectionLimits } from "./connection.js";
import { RealtimeHub } from "./hub.js";
import { parseClientMessage } from "./protocol.js";
import type { UpdateBus } from "./update-bus.js";

export const REALTIME_PATH = "/rt";

/** See RealtimeOptions.maxConnections. */
export const DEFAULT_REALTIME_CONNECTIONS = 20_000;

/** See RealtimeOptions.tokenGraceSeconds. */
export const DEFAULT_TOKEN_GRACE_SECONDS = 24 * 60 * 60;

export type RealtimeOptions = Partial<ConnectionLimits> & {
  /**
   * Sockets this node holds at once. Default 20,000 (startServer: four fifths of the node's
   * connection cap, 20,000 at most).
   */
  maxConnections?: number;
  /** Largest inbound frame. Default 16 KiB (the protocol's messages are tiny). */
  maxMessageBytes?: number;
  /** A socket silent this long is closed. Default 15 min: the client pings every 5. */
  idleTimeoutMs?: number;
  /**
   * How long after its `exp` (beyond the usual 30 s of clock skew) a token still opens a socket
   * and subscribes on one, in whole seconds; 0: no longer than the skew. The official client puts
   * the token in the socket's URL once and reconnects with that URL for as long as the page
   * lives, so after a restart, a deploy or a laptop's sleep it comes back with a token that
   * expired meanwhile, is refused, and stays silently dead. Default 24 h, which covers a working
   * day: every subscription and update still passes the machine's allowRead, and a deleted key
   * or session is still refused (and its sockets closed). Only the expiry is forgiven.
   */
  tokenGraceSeconds?: number;
  /**
   * How often the keys and sessions of open sockets are looked up: a socket whose key or session
   * was deleted (on any node) is closed by the next look. Default 10 s.
   */
  credentialCheckMs?: number;
};

export type Realtime = {
  hub: RealtimeHub;
  readonly connections: number;
  /** Closes every socket (code 1001) and stops listening to updates. */
  close(): void;
};

export function attachRealtime(
  server: Server,
  deps: {
    engine: Engine;
    store: Store;
    authenticator: Authenticator;
    logger: Logger;
    /** Every node's committed updates (default: this node's engine's only). */
    updates?: UpdateBus;
  },
  options: RealtimeOptions = {},
): Realtime {
  const limits: ConnectionLimits = {
    maxSubscriptions: options.maxSubscriptions ?? 1000,
    highWaterBytes: options.highWaterBytes ?? 256 * 1024,
  };
  const maxConnections = options.maxConnections ?? DEFAULT_REALTIME_CONNECTIONS;
  const idleTimeoutMs = options.idleTimeoutMs ?? 15 * 60 * 1000;
  const tokenGraceSeconds = options.tokenGraceSeconds ?? DEFAULT_TOKEN_GRACE_SECONDS;
  if (!(Number.isSafeInteger(tokenGraceSeconds) && tokenGraceSeconds >= 0)) {
    throw new TypeError("realtime.tokenGraceSeconds must be a whole number of seconds, 0 or more");
  }
  const hub = new RealtimeHub({ ...deps, tokenGraceSeconds });
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxMessageBytes ?? 16 * 1024,
  });
  const connections = new Set<Connection>();
  /** Handshakes being verified: each may become a socket, so each holds a place meanwhile. */
  let handshakes = 0;

  const sweep = setInterval(
    () => {
      const silentSince = Date.now() - idleTimeoutMs;
      for (const connection of connections) {
        if (connection.lastSeen < silentSince) connection.close(1001, "idle");
      }
    },
    Math.min(idleTimeoutMs, 30_000),
  );
  sweep.unref();
  // Checks never overlap: a slow store skips a round rather than piling them up.
  let checking = false;
  const credentialCheck = setInterval(() => {
    if (checking || connections.size === 0) return;
    checking = true;
    closeRevoked(connections, deps.authenticator)
      .catch((err: unknown) =>
        deps.logger.warn("could not check the realtime sockets' credentials", {
          error: String(err),
        }),
      )
      .finally(() => (checking = false));
  }, options.credentialCheckMs ?? 10_000);
  credentialCheck.unref();

  const accept = (socket: WebSocket, principal: Principal) => {
    const connection = new Connection(socket, principal, limits);
    connections.add(connection);
    socket.on("message", (data, isBinary) => {
      connection.lastSeen = Date.now();
      if (isBinary) {
        connection.sendError({ status: 400, code: "invalid-parameter", error: "send text frames" });
        return;
      }
      const parsed = parseClientMessage(textOf(data));
      if ("problem" in parsed) {
        connection.sendError({
          ...(parsed.requestId ? { requestId: parsed.requestId } : {}),
          status: 400,
          code: "invalid-parameter",
          error: parsed.problem,
        });
        return;
      }
      const { message } = parsed;
      if (message.type === "ping") connection.send('{"type":"pong"}');
      else if (message.type === "unsubscribe-from-instance") {
        hub.unsubscribe(connection, message.requestId);
      } else void hub.subscribe(connection, message);
    });
    socket.on("pong", () => (connection.lastSeen = Date.now()));
    socket.on("error", () => socket.terminate());
    socket.on("close", () => {
      connections.delete(connection);
      hub.disconnect(connection);
    });
  };

  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    // Node's HTTP server takes its own error listener off the socket it hands over: without one,
    // a client resetting the connection while its token is checked (or refused) would be an
    // unhandled 'error' event, which ends the process. `ws` adds its own once it upgrades.
    socket.on("error", () => socket.destroy());
    // Read as the HTTP API reads its requests, never with a bare `new URL`: the HTTP parser lets
    // targets through that the URL parser throws on ("http://[", "//[" against a base), and a
    // throw out of this listener takes down the process.
    let target: ApiRequest;
    try {
      target = readApiRequest(request);
    } catch (err) {
      const { status, body } = errorResponse(err, deps.logger);
      return reject(socket, status, body);
    }
    if (target.path !== REALTIME_PATH) {
      return reject(socket, 404, { error: "no such endpoint", code: "not-found" });
    }
    if (!isWebSocketHandshake(request)) {
      return reject(socket, 400, {
        error: "not a valid WebSocket handshake",
        code: "invalid-parameter",
      });
    }
    // Handshakes still verifying count too: checked against open sockets only, any number of
    // handshakes sent together all passed this check and then all became sockets.
    if (connections.size + handshakes >= maxConnections) {
      return reject(socket, 503, {
        error: "too many realtime connections",
        code: "too-many-connections",
      });
    }
    handshakes++;
    authenticate(target.query)
      .finally(() => handshakes--)
      .then((principal) => wss.handleUpgrade(request, socket, head, (ws) => accept(ws, principal)))
      .catch((err: unknown) => {
        const { status, body } = errorResponse(err, deps.logger);
        reject(socket, status, body);
      });
  };

  const authenticate = async (query: URLSearchParams): Promise<Principal> => {
    const token = query.get("token");
    if (!token) throw new BackstateError("token-missing", "put the token in the query: ?token=…");
    const caller = await deps.authenticator.verify(token, {
      expiredGraceSeconds: tokenGraceSeconds,
    });
    return resolvePrincipal(deps.store, caller, {
      org: query.get(ORG_HEADER) ?? undefined,
      act: undefined,
    });
  };

  server.on("upgrade", onUpgrade);
  return {
    hub,
    get connections() {
      return connections.size;
    },
    close() {
      server.off("upgrade", onUpgrade);
      clearInterval(sweep);
      clearInterval(credentialCheck);
      hub.close();
      for (const connection of connections) connection.close(1001, "server shutting down");
      wss.close();
    },
  };
}

/** WebSocket close code for a socket whose credentials were revoked (policy violation). */
export const REVOKED_CLOSE_CODE = 1008;

/** Closes the sockets whose key or session no longer exists: one lookup per distinct credential. */
async function closeRevoked(
  connections: ReadonlySet<Connection>,
  authenticator: Authenticator,
): Promise<void> {
  const byCredential = new Map<string, Connection[]>();
  for (const connection of connections) {
    const { caller } = connection.principal;
    const id = caller.kind === "key" ? caller.key.id : caller.session.id;
    const sockets = byCredential.get(id);
    if (sockets) sockets.push(connection);
    else byCredential.set(id, [connection]);
  }
  // Asked together, so the store answers them in as few reads as it can (one, on PostgreSQL).
  await Promise.all(
    [...byCredential.values()].map(async (sockets) => {
      if (await authenticator.stillValid(sockets[0]!.principal.caller)) return;
      for (const connection of sockets) {
        connection.close(REVOKED_CLOSE_CODE, "the socket's key or session no longer exists");
      }
    }),
  );
}

/** How long a refused handshake's client may take to read its answer before it is cut. */
const REFUSAL_LINGER_MS = 2_000;

/**
 * Answers a handshake with an HTTP error and lets go of the connection. Node hands an upgrade's
 * socket over half-open (allowHalfOpen) and with no timeout, and the connection cap counts it as
 * never idle: ended only, it was held (with its place under the cap) for as long as the client
 * kept its end open. What the client sends meanwhile is read and dropped, so its close is seen,
 * and no reset (for unread bytes) overtakes the answer.
 */
function reject(socket: Duplex, status: number, body: object): void {
  const text = JSON.stringify(body);
  const cut = setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS);
  socket.once("close", () => clearTimeout(cut));
  socket.resume();
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}\r\n` +
      "content-type: application/json\r\n" +
      "access-control-allow-origin: *\r\n" +
      `content-length: ${Buffer.byteLength(text)}\r\n` +
      "connection: close\r\n\r\n" +
      text,
  );
}

function textOf(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString();
  return Buffer.from(data as ArrayBuffer).toString();
}

/** What `ws` would refuse with an HTML page; checked first so every refusal is our JSON. */
function isWebSocketHandshake(request: IncomingMessage): boolean {
  const key = request.headers["sec-websocket-key"];
  const version = request.headers["sec-websocket-version"];
  return (
    request.method === "GET" &&
    request.headers.upgrade?.toLowerCase() === "websocket" &&
    typeof key === "string" &&
    /^[A-Za-z0-9+/]{22}==$/.test(key) &&
    (version === "13" || version === "8")
  );
}
