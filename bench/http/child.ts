// The servers bench/http measures each run in a child process of their own, so the load generator
// (in the parent) never shares an event loop with them. A child announces itself with one IPC
// message and shuts down when told "close".
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

export type Child<T> = {
  info: T;
  /** The child's process id (its CPU is read from /proc by bench/profile). */
  pid: number;
  close(): Promise<void>;
};

/** In the child: report `info` to the parent, and on "close" run `close` and exit. */
export function serveChild<T>(info: T, close: () => Promise<void> | void): void {
  process.on("message", (message) => {
    if (message !== "close") return;
    void Promise.resolve(close()).then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  });
  process.send?.({ ready: info });
}

/** In the parent: starts `script` (next to this file) and waits for its announcement. */
export function startChild<T>(script: string): Promise<Child<T>> {
  const child: ChildProcess = fork(fileURLToPath(new URL(script, import.meta.url)), [], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return new Promise((resolve, reject) => {
    const early = (code: number | null) => reject(new Error(`${script} exited early (${code})`));
    child.once("exit", early);
    child.once("error", reject);
    child.once("message", (message) => {
      child.off("exit", early);
      const { ready } = message as { ready: T };
      resolve({
        info: ready,
        pid: child.pid!,
        close: async () => {
          if (child.exitCode === null && child.signalCode === null) child.send("close");
          const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
          await exited;
          clearTimeout(timer);
        },
      });
    });
  });
}
