// One node of a test cluster, in a child process of its own (forked by startClusterNode): a real
// server (startServer) on the PostgreSQL schema its environment names. It reports its URL over
// IPC once listening, and closes gracefully when sent "close"; tests may also SIGKILL it.
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { jsonLogger, silentLogger } from "../../src/engine/logger.js";
import { startServer, type ServerOptions } from "../../src/http/server.js";

const CONFIG_VARIABLE = "BACKSTATE_TEST_CLUSTER_NODE";

/** What a node is started with: JSON-safe server options (no functions, no clock). */
export type ClusterNodeConfig = Pick<
  ServerOptions,
  | "databaseUrl"
  | "postgres"
  | "nodeId"
  | "timerLeaseMs"
  | "timerRetryDelayMs"
  | "maxTimerAttempts"
  | "sandboxes"
> & { verbose?: boolean };

export type ClusterNode = {
  url: string;
  process: ChildProcess;
  /** Resolves when the process has exited (however it ended). */
  exited: Promise<void>;
  /** Graceful: requests in flight finish, then the process exits. */
  close(): Promise<void>;
  /** SIGKILL: no cleanup of any kind. */
  kill(): Promise<void>;
};

/** In the test: forks a node and waits until it listens. */
export function startClusterNode(config: ClusterNodeConfig): Promise<ClusterNode> {
  const child = fork(fileURLToPath(import.meta.url), [], {
    env: { ...process.env, [CONFIG_VARIABLE]: JSON.stringify(config) },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return new Promise((resolve, reject) => {
    const early = (code: number | null) =>
      reject(new Error(`cluster node ${config.nodeId} exited before listening (${code})`));
    child.once("exit", early);
    child.once("error", reject);
    child.once("message", (message) => {
      child.off("exit", early);
      const alive = () => child.exitCode === null && child.signalCode === null;
      resolve({
        url: (message as { url: string }).url,
        process: child,
        exited,
        async close() {
          if (alive()) child.send("close");
          const force = setTimeout(() => child.kill("SIGKILL"), 20_000);
          await exited;
          clearTimeout(force);
        },
        async kill() {
          if (alive()) child.kill("SIGKILL");
          await exited;
        },
      });
    });
  });
}

async function runNode(config: ClusterNodeConfig): Promise<void> {
  const { verbose, ...options } = config;
  const server = await startServer({
    ...options,
    logger: verbose ? jsonLogger : silentLogger,
    host: "127.0.0.1",
    port: 0,
  });
  process.on("message", (message) => {
    if (message !== "close") return;
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  });
  // The test process going away (or closing the channel) ends the node too.
  process.on("disconnect", () => process.exit(0));
  process.send?.({ url: server.url });
}

const config = process.env[CONFIG_VARIABLE];
if (config !== undefined && process.send !== undefined) {
  await runNode(JSON.parse(config) as ClusterNodeConfig);
}
