// The node:http server under the API. Requests too broken to reach the API still get its JSON
// error body: those node's parser refuses (raw bytes in the URL, a 20 KB URL, two
// content-lengths…), which node would answer with a bare "400 Bad Request".
import { STATUS_CODES, createServer, type Server, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { Logger } from "../engine/logger.js";
import { silentLogger } from "../engine/logger.js";
import type { RequestListener } from "./api.js";
import { capConnections, defaultMaxConnections, readOpenFileLimit } from "./connection-cap.js";
import { defaultMaxConnectionsPerAddress } from "./connections-per-address.js";

/**
 * The idle time clients are told (Keep-Alive: timeout=5, what node says by default). Clients
 * reuse an idle connection only within it: Node's fetch up to 2 s less, others up to all of it.
 */
const ADVERTISED_KEEP_ALIVE_SECONDS = 5;
/**
 * How long an idle connection is really kept: well past the advertised time. Closing it exactly
 * then (node's default) loses the race with a client that was stalled (a GC pause, a starved
 * CPU) for as long as its margin: it sends its next request on the connection as the server's
 * close arrives, and the request fails with the connection ("fetch failed").
 */
const KEEP_ALIVE_HELD_MS = 30_000;
/** A client at its share: its own connection idle this long makes room for its new one. */
const OWN_IDLE_RECLAIMED_MS = 15_000;
/**
 * How long an answer, once written, may take to reach a client. Node starts the keep-alive
 * timeout only once the answer is all out, and has no other timeout by default: a client that
 * never reads held its connection (and the answer buffered in it) for as long as it liked. A
 * minute carries a 1 MB answer over a 256 kbit/s link twice over.
 */
const RESPONSE_DELIVERY_MS = 60_000;

export type HttpServerOptions = {
  /** Connections held at once (HTTP and WebSocket); default: see defaultMaxConnections. */
  maxConnections?: number;
  /** Connections one client holds at once; default: see defaultMaxConnectionsPerAddress; 0: no limit. */
  maxConnectionsPerAddress?: number;
  /** Clients on loopback and private networks count against their share too (tests). */
  limitLocalAddresses?: boolean;
  /** How long a written answer may take to go out before its connection is cut (tests). */
  responseDeliveryMs?: number;
  /** The time idle connections are measured in (tests move it); default Date.now. */
  now?: () => number;
  logger?: Logger;
};

export function createHttpServer(
  listener: RequestListener,
  options: HttpServerOptions = {},
): Server {
  const deliveryMs = options.responseDeliveryMs ?? RESPONSE_DELIVERY_MS;
  // A missing Host is refused by the API (in JSON), not by node.
  // Per connection, the answers not yet written whole (more than one when requests are
  // pipelined), and those written whole but still going out. An answer cut off with its
  // connection is never taken out: the connection's sets go with it.
  const connections = new WeakMap<object, ConnectionAnswers>();
  const server = createServer({ requireHostHeader: false }, (incoming, outgoing) => {
    // Set here, node sends this header instead of one derived from keepAliveTimeout.
    outgoing.setHeader("keep-alive", `timeout=${ADVERTISED_KEEP_ALIVE_SECONDS}`);
    const socket = incoming.socket;
    let answers = connections.get(socket);
    if (answers === undefined) {
      connections.set(socket, (answers = { unwritten: new Set(), goingOut: new Set() }));
    }
    const { unwritten, goingOut } = answers;
    unwritten.add(outgoing);
    // 'prefinish': the whole answer is handed to the socket. Node replaces this timeout with the
    // keep-alive one once the answer is out ('finish'), and lifts it when the next request comes.
    outgoing.once("prefinish", () => {
      unwritten.delete(outgoing);
      if (outgoing.writableFinished) return;
      goingOut.add(outgoing);
      socket.setTimeout(deliveryMs);
      // Once out, node hands the connection to a pipelined request's answer (if one waits)
      // without touching the timeout: that request, still being answered (an event may wait
      // 90 s for its instance to settle), had its connection cut. Its own answer, once written,
      // sets its own. Not when the next answer was written already and is going out now (node
      // wrote it before this event): lifted, that answer would have no timeout at all.
      outgoing.once("finish", () => {
        goingOut.delete(outgoing);
        if (unwritten.size > 0 && goingOut.size === 0) socket.setTimeout(0);
      });
    });
    listener(incoming, outgoing);
  });
  server.keepAliveTimeout = KEEP_ALIVE_HELD_MS;
  server.on("clientError", answerClientError);
  const maxConnections = options.maxConnections ?? defaultMaxConnections(readOpenFileLimit());
  capConnections(server, {
    maxConnections,
    maxConnectionsPerAddress:
      options.maxConnectionsPerAddress ?? defaultMaxConnectionsPerAddress(maxConnections),
    limitLocalAddresses: options.limitLocalAddresses ?? false,
    // A client may reuse an idle connection up to the advertised time; past it, it should not.
    reclaimIdleAfterMs: ADVERTISED_KEEP_ALIVE_SECONDS * 1000,
    // For the client's own newcomer, a wider margin: the alternative is only a 429 to that
    // client, not refusing others, so a stalled client's next request on an old connection
    // deserves more room (it would fail with the connection, its outcome unknown).
    reclaimOwnIdleAfterMs: OWN_IDLE_RECLAIMED_MS,
    now: options.now ?? Date.now,
    logger: options.logger ?? silentLogger,
  });
  return server;
}

/** A connection's answers, by how far they are out. */
type ConnectionAnswers = { unwritten: Set<ServerResponse>; goingOut: Set<ServerResponse> };

const CLIENT_ERRORS: Record<string, [status: number, code: string, error: string]> = {
  HPE_HEADER_OVERFLOW: [431, "payload-too-large", "the request's headers are too large"],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: [413, "payload-too-large", "chunk extensions are too large"],
  ERR_HTTP_REQUEST_TIMEOUT: [408, "request-timeout", "the request took too long to arrive"],
};

/** What node does by default (answer unless a response is under way, then drop), in JSON. */
function answerClientError(err: Error & { code?: string }, socket: Duplex): void {
  const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (err.code !== "ECONNRESET" && socket.writable && !inFlight?.headersSent) {
    const [status, code, error] = CLIENT_ERRORS[err.code ?? ""] ?? [
      400,
      "invalid-parameter",
      `malformed HTTP request (${err.code ?? "unparsable"})`,
    ];
    const body = JSON.stringify({ error, code });
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
        "content-type: application/json\r\n" +
        "access-control-allow-origin: *\r\n" +
        `content-length: ${Buffer.byteLength(body)}\r\n` +
        "connection: close\r\n\r\n" +
        body,
    );
  }
  socket.destroy();
}
