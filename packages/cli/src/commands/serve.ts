// `backstate serve`: one Backstate node on an embedded SQLite database in --data-dir, or on a
// PostgreSQL database (--database-url) that several nodes share. The first
// start creates the admin and writes <data-dir>/credentials.json; SIGINT/SIGTERM stop it
// gracefully (requests in flight finish), a second signal at once.
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import type { Logger, RunningServer } from "@backstate/server";
import { Option, type Command } from "commander";
import { globalOptions } from "../connection.js";
import { credentialsPath } from "../credentials.js";
import { CliError, EXIT_FAILURE, EXIT_USAGE } from "../errors.js";
import { parseHost, parseHttpUrl, parsePort, parsePostgresUrl, wholeNumberFrom } from "../parse.js";

export type ServeOptions = {
  port: number;
  host: string;
  dataDir: string;
  publicUrl?: string;
  showToken?: boolean;
  /** PostgreSQL instead of the embedded SQLite database: several nodes may share it. */
  databaseUrl?: string;
  /** Connections this node's PostgreSQL pool opens at most (the store's default: 10). */
  databasePoolSize?: number;
  /** Identity providers may serve their JWKS from loopback (development). */
  allowLoopbackJwks?: boolean;
  /** Identity providers may serve their JWKS from private addresses (inside your network). */
  allowPrivateJwks?: boolean;
  /** Machine code's fetch may reach loopback and private addresses (services inside your network). */
  allowPrivateFetch?: boolean;
  /** How long a request waits for an instance's running services (the engine's default: 90 s). */
  settleTimeout?: number;
  /** For how many instances a node remembers its last write (the engine's default: 10,000). */
  instanceCacheSize?: number;
  /** How long a node's lease on running services lasts unrenewed (the engine's default: 30 s). */
  serviceLease?: number;
  /** How long after its expiry a token still opens a realtime socket (the server's default: 24 h). */
  realtimeTokenGrace?: number;
  /** Connections held at once, HTTP and realtime (the server's default: 25,000 or what the open-file limit allows). */
  maxConnections?: number;
  /** Connections one client address holds at once (the server's default: a quarter of the cap, at least 64; 0: no limit). */
  maxConnectionsPerAddress?: number;
  /** How long after the first signal the server goes on serving, /healthz saying 503, before it closes. */
  shutdownDelay?: number;
};

/** The longest delay a Node.js timer takes (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/**
 * A pool of one would let a commit waiting for a locked row stall every other commit: such waits
 * each keep a connection (up to half the pool), and the other commits need one meanwhile.
 */
const MIN_DATABASE_POOL_SIZE = 2;
/** Far past what one PostgreSQL server accepts (max_connections is 100 by default). */
const MAX_DATABASE_POOL_SIZE = 1_000;
/** Ten minutes: a load balancer that takes longer to stop sending requests is misconfigured. */
const MAX_SHUTDOWN_DELAY_MS = 10 * 60 * 1000;
/** Ten years: past that, issue tokens that live longer. */
const MAX_TOKEN_GRACE_SECONDS = 10 * 365 * 24 * 3600;

export const SERVE_DEFAULTS = { port: 7600, host: "127.0.0.1", dataDir: "./.backstate" } as const;

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description("run a Backstate server (embedded SQLite, or PostgreSQL with --database-url)")
    .addOption(
      new Option("-p, --port <port>", "port to listen on (0: any free port)")
        .env("BACKSTATE_PORT")
        .default(SERVE_DEFAULTS.port)
        .argParser(parsePort),
    )
    .addOption(
      new Option("--host <host>", "address to listen on (0.0.0.0: every interface)")
        .env("BACKSTATE_HOST")
        .default(SERVE_DEFAULTS.host)
        .argParser(parseHost),
    )
    .addOption(
      new Option("--public-url <url>", "the URL clients reach this server at, behind a proxy")
        .env("BACKSTATE_PUBLIC_URL")
        .argParser(parseHttpUrl),
    )
    .addOption(
      new Option(
        "--database-url <url>",
        "PostgreSQL (postgres://…) instead of SQLite in --data-dir; nodes may share it",
      )
        .env("BACKSTATE_DATABASE_URL")
        .argParser(parsePostgresUrl),
    )
    .addOption(
      new Option(
        "--database-pool-size <count>",
        "with --database-url: connections this node's pool opens at most, besides one that listens for other nodes' changes (default 10)",
      )
        .env("BACKSTATE_DATABASE_POOL_SIZE")
        .argParser(
          wholeNumberFrom(
            MIN_DATABASE_POOL_SIZE,
            MAX_DATABASE_POOL_SIZE,
            "a number of connections",
          ),
        ),
    )
    .addOption(
      new Option(
        "--allow-loopback-jwks",
        "development: identity providers may serve JWKS from this machine",
      ).env("BACKSTATE_ALLOW_LOOPBACK_JWKS"),
    )
    .addOption(
      new Option(
        "--allow-private-jwks",
        "identity providers may serve JWKS from private network addresses",
      ).env("BACKSTATE_ALLOW_PRIVATE_JWKS"),
    )
    .addOption(
      new Option(
        "--allow-private-fetch",
        "machines' fetch may reach this machine and private network addresses",
      ).env("BACKSTATE_ALLOW_PRIVATE_FETCH"),
    )
    .addOption(
      new Option(
        "--settle-timeout <ms>",
        "how long a request waits for the services it started (default 90000)",
      )
        .env("BACKSTATE_SETTLE_TIMEOUT_MS")
        .argParser(wholeNumberFrom(1, MAX_TIMER_MS, "a settle timeout in milliseconds")),
    )
    .addOption(
      new Option(
        "--instance-cache-size <count>",
        "instances whose last write this node remembers, to skip a read (default 10000; 0: none)",
      )
        .env("BACKSTATE_INSTANCE_CACHE_SIZE")
        .argParser(wholeNumberFrom(0, 10_000_000, "a number of instances")),
    )
    .addOption(
      new Option(
        "--service-lease <ms>",
        "how long other nodes wait before they count a dead node's services lost (default 30000)",
      )
        .env("BACKSTATE_SERVICE_LEASE_MS")
        .argParser(wholeNumberFrom(1_000, MAX_TIMER_MS, "a service lease in milliseconds")),
    )
    .addOption(
      new Option(
        "--realtime-token-grace <seconds>",
        "how long after its expiry a token still opens a realtime socket (default 86400; 0: none)",
      )
        .env("BACKSTATE_REALTIME_TOKEN_GRACE_SECONDS")
        .argParser(
          wholeNumberFrom(0, MAX_TOKEN_GRACE_SECONDS, "a realtime token grace in seconds"),
        ),
    )
    .addOption(
      new Option(
        "--max-connections <count>",
        "connections (HTTP and realtime) held at once; past it new ones get 503 (default 25000, fewer under a low open-file limit)",
      )
        .env("BACKSTATE_MAX_CONNECTIONS")
        .argParser(wholeNumberFrom(1, 10_000_000, "a number of connections")),
    )
    .addOption(
      new Option(
        "--max-connections-per-address <count>",
        "connections one client address (IPv6: one /64) holds at once, loopback and private networks aside; past it its own connection idle 15 s makes room, else new ones get 429 (default a quarter of --max-connections, at least 64; 0: no limit)",
      )
        .env("BACKSTATE_MAX_CONNECTIONS_PER_ADDRESS")
        .argParser(wholeNumberFrom(0, 10_000_000, "a number of connections (0: no limit)")),
    )
    .addOption(
      new Option(
        "--shutdown-delay <ms>",
        "after SIGTERM/SIGINT, go on serving this long with /healthz answering 503, so a load balancer takes the node out first (default 0)",
      )
        .env("BACKSTATE_SHUTDOWN_DELAY_MS")
        .argParser(wholeNumberFrom(0, MAX_SHUTDOWN_DELAY_MS, "a shutdown delay in milliseconds")),
    )
    .option("--show-token", "also print the admin token")
    // --data-dir is a global option (program.ts): the same folder API commands read credentials from.
    .action((options: Omit<ServeOptions, "dataDir">, command: Command) =>
      serve({
        ...options,
        ...switchesFromEnvironment(command),
        dataDir: globalOptions(command).dataDir,
      }),
    );
}

/** The switches an environment variable may set (a flag on the command line wins over it). */
const SWITCH_VARIABLES = {
  allowLoopbackJwks: "BACKSTATE_ALLOW_LOOPBACK_JWKS",
  allowPrivateJwks: "BACKSTATE_ALLOW_PRIVATE_JWKS",
  allowPrivateFetch: "BACKSTATE_ALLOW_PRIVATE_FETCH",
} as const;

/**
 * The switches that came from their environment variable, read by value: commander turns a switch
 * on whenever its variable is set, so BACKSTATE_ALLOW_PRIVATE_FETCH=false would have opened the
 * private network to machines' fetch. A value that is neither on nor off is a usage error.
 */
function switchesFromEnvironment(command: Command): Partial<ServeOptions> {
  const switches: Partial<Record<keyof typeof SWITCH_VARIABLES, boolean>> = {};
  for (const [key, variable] of Object.entries(SWITCH_VARIABLES)) {
    if (command.getOptionValueSource(key) !== "env") continue;
    const value = (process.env[variable] ?? "").trim().toLowerCase();
    if (["1", "true", "yes", "on"].includes(value)) switches[key as keyof typeof switches] = true;
    else if (["", "0", "false", "no", "off"].includes(value)) {
      switches[key as keyof typeof switches] = false;
    } else {
      throw new CliError(
        `environment variable ${variable} must be on (1, true, yes, on) or off (0, false, no, off), not '${process.env[variable]}'`,
        EXIT_USAGE,
      );
    }
  }
  return switches;
}

/** Runs until SIGINT or SIGTERM has closed the server. */
export async function serve(options: ServeOptions, logger?: Logger): Promise<void> {
  if (options.databasePoolSize !== undefined && options.databaseUrl === undefined) {
    // SQLite has no pool: a size given for it is a mistake the operator should hear about.
    throw new CliError(
      "--database-pool-size (BACKSTATE_DATABASE_POOL_SIZE) needs --database-url: the embedded SQLite database has no connection pool",
      EXIT_USAGE,
    );
  }
  // Loaded here, not at the top: --help and usage errors answer without loading the server.
  const { jsonLogger, startServer } = await import("@backstate/server");
  const { ensureAdminCredentials } = await import("../bootstrap.js");
  logger ??= jsonLogger;
  const dataDir = resolve(options.dataDir);
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  } catch (error) {
    // Not a folder, or not ours to write: what the operator must fix, not a stack trace.
    throw new CliError(`cannot use the data dir ${dataDir}: ${(error as Error).message}`);
  }
  let server: RunningServer;
  try {
    server = await startServer({
      dataDir,
      // This process alone serves the data dir: a second server on it is refused.
      claimDataDir: true,
      host: options.host,
      port: options.port,
      logger,
      ...(options.publicUrl !== undefined ? { publicUrl: options.publicUrl } : {}),
      ...(options.databaseUrl !== undefined ? { databaseUrl: options.databaseUrl } : {}),
      ...(options.databasePoolSize !== undefined
        ? { postgres: { poolSize: options.databasePoolSize } }
        : {}),
      ...(options.settleTimeout !== undefined ? { settleTimeoutMs: options.settleTimeout } : {}),
      ...(options.instanceCacheSize !== undefined
        ? { instanceCacheSize: options.instanceCacheSize }
        : {}),
      ...(options.serviceLease !== undefined ? { serviceLeaseMs: options.serviceLease } : {}),
      ...(options.maxConnections !== undefined ? { maxConnections: options.maxConnections } : {}),
      ...(options.maxConnectionsPerAddress !== undefined
        ? { maxConnectionsPerAddress: options.maxConnectionsPerAddress }
        : {}),
      ...(options.realtimeTokenGrace !== undefined
        ? { realtime: { tokenGraceSeconds: options.realtimeTokenGrace } }
        : {}),
      tokenExchange: {
        allowLoopbackJwks: options.allowLoopbackJwks === true,
        allowPrivateJwksAddresses: options.allowPrivateJwks === true,
      },
      sandboxes: { allowPrivateNetworkFetch: options.allowPrivateFetch === true },
    });
  } catch (error) {
    throw startError(error, options) ?? error;
  }
  let setupDone!: () => void;
  const setup = new Promise<void>((resolve) => (setupDone = resolve));
  const stopped = closeOnSignals(server, logger, setup, options.shutdownDelay ?? 0);

  const path = credentialsPath(dataDir);
  try {
    const apiUrl = options.publicUrl ?? clientUrl(server.url);
    // SQLite: the data dir is claimed, so no other server is setting up this database.
    const alone = options.databaseUrl === undefined;
    const { credentials, outcome } = await ensureAdminCredentials(server, path, apiUrl, alone);
    logger.info("listening", { url: server.url, apiUrl, dataDir, credentials: outcome });
    const shownPublic = options.publicUrl !== undefined ? ` (public URL ${apiUrl})` : "";
    process.stdout.write(
      `Backstate is listening at ${server.url}${shownPublic}\n` +
        `Admin credentials (apiUrl, orgId, adminToken) are in ${path}\n` +
        (options.showToken ? `Admin token: ${credentials.adminToken}\n` : ""),
    );
  } catch (error) {
    await server.close();
    // A signal's close may still end after this one's (the same close): nobody waits for it.
    stopped.catch(() => {});
    // credentials.json cannot be read or written (a folder, not ours, a full disk): the operator's
    // to fix, said plainly rather than with a stack trace.
    if (isFileSystemError(error)) {
      throw new CliError(`cannot use the credentials file ${path}: ${error.message}`);
    }
    throw error;
  } finally {
    setupDone();
  }
  await stopped;
}

/**
 * The first signal closes the server (the promise resolves after); a second exits at once. A
 * signal during the first start's setup (`setup` pending) closes it once the setup is done: the
 * store closed under the setup's feet failed the start (exit 1) with the bootstrap admin half
 * created (on PostgreSQL, whose queries let the signal in between them). With a delay, the server
 * first serves on for that long, draining (/healthz answers 503), so that a load balancer polling
 * it stops sending it requests before it stops taking connections.
 */
function closeOnSignals(
  server: RunningServer,
  logger: Logger,
  setup: Promise<void>,
  delayMs: number,
): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    let closing = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (closing) {
        logger.warn("second signal: exiting without waiting", { signal });
        process.exit(signal === "SIGINT" ? 130 : 143);
      }
      closing = true;
      server.drain();
      if (delayMs > 0) {
        logger.info("draining: serving on, /healthz answering 503, before shutting down", {
          signal,
          delayMs,
        });
      } else logger.info("shutting down: requests in flight finish first", { signal });
      setup
        .then(() => drained(delayMs, logger))
        .then(() => server.close())
        .then(
          () => {
            logger.info("stopped");
            process.off("SIGINT", onSignal);
            process.off("SIGTERM", onSignal);
            resolvePromise();
          },
          (error: unknown) => reject(error instanceof Error ? error : new Error(String(error))),
        );
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
}

/** Waits out the shutdown delay (nothing to wait for when it is 0). */
async function drained(delayMs: number, logger: Logger): Promise<void> {
  if (delayMs === 0) return;
  await new Promise((resolve) => setTimeout(resolve, delayMs));
  logger.info("shutting down: requests in flight finish first");
}

/** A failed system call (open, read, rename…): node gives it an errno code and a syscall name. */
function isFileSystemError(error: unknown): error is NodeJS.ErrnoException {
  const { code, syscall } = (error ?? {}) as NodeJS.ErrnoException;
  return typeof code === "string" && typeof syscall === "string";
}

/** A URL a client on this machine can use: a wildcard listen address becomes loopback. */
function clientUrl(listenUrl: string): string {
  const url = new URL(listenUrl);
  if (url.hostname === "0.0.0.0") url.hostname = "127.0.0.1";
  else if (url.hostname === "[::]") url.hostname = "[::1]";
  return url.origin;
}

/** Why the server did not start, for people, when it is something they can set right. */
function startError(error: unknown, options: ServeOptions): CliError | undefined {
  const where = `${options.host}:${options.port}`;
  switch ((error as NodeJS.ErrnoException | undefined)?.code) {
    // The data dir or database cannot be served as it is (or a long transaction holds a table a
    // migration changes): the message says why and what to do.
    case "data-dir-in-use":
    case "data-dir-unusable":
    case "store-newer-than-server":
    case "migration-blocked":
      return new CliError((error as Error).message);
    case "EADDRINUSE":
      return new CliError(`cannot listen on ${where}: the port is in use (choose one with --port)`);
    case "EACCES":
      return new CliError(`cannot listen on ${where}: permission denied (try a port above 1023)`);
    case "EADDRNOTAVAIL":
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return new CliError(`cannot listen on ${where}: no such address on this machine (--host)`);
    // The database refused or could not be reached as the server set it up (migrations first).
    case "store-error":
      if (options.databaseUrl === undefined) return undefined;
      return new CliError(
        `cannot use the PostgreSQL database ${databaseShown(options.databaseUrl)}: ${(error as Error).message}`,
        EXIT_FAILURE,
        "check that PostgreSQL runs and is reachable from here, and the host, port, user, password and database of --database-url (BACKSTATE_DATABASE_URL)",
      );
    default:
      return undefined;
  }
}

/** A database URL as people may see it in a message: user, host, port and database, no secret. */
function databaseShown(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  const user = url.username === "" ? "" : `${decoded(url.username)}@`;
  return `${user}${url.host}${url.pathname}`;
}

/** `text` percent-decoded, or as it is when it is not (a stray '%' must not fail the message). */
function decoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
