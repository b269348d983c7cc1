// A test worker in a process of its own, to be killed with SIGKILL at a moment the test picks:
// the lines it prints, as they come, and how it ended.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

export type WorkerProcess = {
  child: ChildProcess;
  /** What the worker printed so far, one entry a line. */
  lines: string[];
  /** Its exit code (null when a signal ended it). */
  exited: Promise<number | null>;
};

/** The path of a compiled worker in test/support (`name` without its `.js`). */
export function supportWorker(name: string): string {
  return fileURLToPath(new URL(`./${name}.js`, import.meta.url));
}

/** Runs `worker` with `args`; its stderr goes to the test's. */
export function runWorker(worker: string, args: readonly string[]): WorkerProcess {
  const child = spawn(process.execPath, [worker, ...args], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines: string[] = [];
  let buffer = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    buffer += chunk.toString();
    const parts = buffer.split("\n");
    buffer = parts.pop() ?? "";
    lines.push(...parts);
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, lines, exited };
}

/** Waits until the worker has printed `line`, for at most `timeoutMs`; whether it has. */
export async function printed(
  worker: WorkerProcess,
  line: string,
  timeoutMs = 60_000,
): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!worker.lines.includes(line) && Date.now() < end) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return worker.lines.includes(line);
}
