// One Backstate node serving HTTP: the engine (openBackstate), the API on node:http, and a
// graceful close: stop accepting, let requests in flight finish, then close the engine and store.
import { randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { Authenticator } from "../auth/authenticator.js";
import { TokenExchange, type TokenExchangeOptions } from "../auth/token-exchange/exchange.js";
import { openBackstate, type Backstate, type BackstateOptions } from "../backstate.js";
import { systemClock } from "../engine/clock.js";
import { randomIds } from "../engine/ids.js";
import { silentLogger, type Logger } from "../engine/logger.js";
import {
  attachRealtime,
  DEFAULT_REALTIME_CONNECTIONS,
  type Realtime,
  type RealtimeOptions,
} from "../realtime/realtime-server.js";
import { createApi } from "./api.js";
import { HealthCheck } from "./health-check.js";
import { defaultMaxConnections, readOpenFileLimit } from "./connection-cap.js";
import { createHttpServer } from "./node-server.js";
import type { ApiServices } from "./route.js";
import { UploadSigner } from "./upload-signer.js";

export type ServerOptions = BackstateOptions & {
  /** Default 127.0.0.1: reachable from this machine only unless asked otherwise. */
  host?: string;
  /** Default 0: any free port (the chosen one is in `url`). */
  port?: number;
  /** The URL clients reach this server at (behind a proxy); default the request's own origin. */
  publicUrl?: string;
  /** Audiences key tokens may carry besides State Backed's. */
  keyAudiences?: string[];
  /**
   * Connections (HTTP and realtime) this node holds at once; past it, new ones are answered 503.
   * Default 25,000, or fewer if the open-file limit leaves less room (connection-cap.ts).
   */
  maxConnections?: number;
  /**
   * Connections one client (an IPv4 address, an IPv6 /64) holds at once; past it, its new ones are
   * answered 429. Clients on loopback and on private networks (proxies) are not limited.
   * Default a quarter of maxConnections, at least 64; 0: no limit (connections-per-address.ts).
   */
  maxConnectionsPerAddress?: number;
  /** How long close() lets requests in flight finish before cutting them. Default 100 s. */
  shutdownGraceMs?: number;
  realtime?: RealtimeOptions;
  /** Token exchange: development and private-network JWKS, lifetimes, leeway. */
  tokenExchange?: TokenExchangeOptions;
};

export type RunningServer = {
  /** The base URL the server listens at, e.g. http://127.0.0.1:7600. */
  url: string;
  backstate: Backstate;
  services: ApiServices;
  httpServer: Server;
  realtime: Realtime;
  /**
   * From now on GET /healthz answers 503 shutting-down while everything else is served as before:
   * a load balancer takes the node out before close() stops it taking connections.
   */
  drain(): void;
  close(): Promise<void>;
};

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const {
    host = "127.0.0.1",
    port = 0,
    publicUrl,
    keyAudiences,
    shutdownGraceMs,
    maxConnections,
    maxConnectionsPerAddress,
    realtime: realtimeOptions,
    tokenExchange,
    ...rest
  } = options;
  const backstate = await openBackstate(rest);
  try {
    const clock = options.clock ?? systemClock;
    const secret = await backstate.store.ensureSetting(
      "upload-signing-secret",
      randomBytes(32).toString("base64url"),
    );
    const services: ApiServices = {
      engine: backstate.engine,
      store: backstate.store,
      authenticator: new Authenticator({
        store: backstate.store,
        clock: () => clock.now(),
        ...(keyAudiences ? { keyAudiences } : {}),
      }),
      uploads: new UploadSigner(secret, () => clock.now()),
      clock,
      ids: options.ids ?? randomIds,
      logger: options.logger ?? silentLogger,
      publicUrl: (request) => publicUrl?.replace(/\/+$/, "") ?? request.origin,
      tokenExchange: new TokenExchange(
        { store: backstate.store, clock, logger: options.logger ?? silentLogger },
        tokenExchange,
      ),
      health: new HealthCheck(
        () => backstate.store.ping(),
        () => performance.now(),
        options.logger ?? silentLogger,
        // The bus's clock is performance.now too.
        () => backstate.updates.notListeningSince(),
      ),
    };
    // Read once: what the default cap fits, and what a cap set by hand is checked against.
    const openFileLimit = readOpenFileLimit();
    warnIfBeyondFileLimit(maxConnections, openFileLimit, services.logger);
    const connectionCap = maxConnections ?? defaultMaxConnections(openFileLimit);
    const httpServer = createHttpServer(createApi(services), {
      maxConnections: connectionCap,
      ...(maxConnectionsPerAddress !== undefined ? { maxConnectionsPerAddress } : {}),
      logger: services.logger,
    });
    const realtime = attachRealtime(
      httpServer,
      { ...services, updates: backstate.updates },
      {
        ...realtimeOptions,
        maxConnections: realtimeOptions?.maxConnections ?? realtimeShareOf(connectionCap),
      },
    );
    await listen(httpServer, host, port);
    const address = httpServer.address() as AddressInfo;
    const shownHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
    return {
      url: `http://${shownHost}:${address.port}`,
      backstate,
      services,
      httpServer,
      realtime,
      drain: () => services.health.drain(),
      close: once(async () => {
        // Said first: a balancer polling /healthz on a connection it keeps takes the node out.
        services.health.drain();
        // Sockets first: an open WebSocket would keep the HTTP server from ever closing.
        realtime.close();
        await closeHttp(httpServer, shutdownGraceMs ?? 100_000);
        await backstate.close();
      }),
    };
  } catch (err) {
    await backstate.close();
    throw err;
  }
}

/**
 * The realtime sockets a node holds at most unless told: four fifths of its connection cap (20,000
 * of the default 25,000), never more than 20,000. Realtime sockets are never idle, so the cap
 * cannot reclaim them: were they allowed every place under it (a cap under 20,000, set so or
 * shrunk by the open-file limit), they could leave none to the API, an admin's requests included.
 */
function realtimeShareOf(connectionCap: number): number {
  return Math.max(1, Math.min(DEFAULT_REALTIME_CONNECTIONS, Math.floor((connectionCap * 4) / 5)));
}

/** A cap the open-file limit cannot honour: past the limit, clients are dropped without a 503. */
function warnIfBeyondFileLimit(
  maxConnections: number | undefined,
  openFileLimit: number | undefined,
  logger: Logger,
): void {
  if (maxConnections === undefined || openFileLimit === undefined) return;
  const fits = defaultMaxConnections(openFileLimit);
  if (maxConnections > fits) {
    logger.warn("the connection cap is more than the open-file limit leaves room for", {
      maxConnections,
      openFileLimit,
      fits,
    });
  }
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

/** Stops accepting; idle keep-alive sockets close now, busy ones as soon as their reply is sent. */
function closeHttp(server: Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const sweep = setInterval(() => server.closeIdleConnections(), 50);
    const deadline = setTimeout(() => server.closeAllConnections(), graceMs);
    server.close(() => {
      clearInterval(sweep);
      clearTimeout(deadline);
      resolve();
    });
    server.closeIdleConnections();
  });
}

function once(task: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => (running ??= task());
}
