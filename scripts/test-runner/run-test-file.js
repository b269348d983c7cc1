// Runs one test file in `node --test`, in a process group of its own, and kills the group (and
// any descendant outside it) if the file has not ended within its time limit.
import { spawn } from "node:child_process";
import { killProcessGroup, killProcessTree } from "./kill-process-tree.js";

// After the file's process exits, how long a leftover holder of its output pipes may keep them
// open before the result is reported anyway.
const PIPE_CLOSE_GRACE_MS = 5_000;

/**
 * Resolves to `{ file, passed, timedOut, exit }` once the file has ended or been killed.
 * `onOutput` receives its stdout and stderr as they arrive; aborting `signal` kills the file.
 */
export function runTestFile(file, { timeoutMs, nodeArgs = [], onOutput, signal }) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--test", ...nodeArgs, file], {
      stdio: ["ignore", "pipe", "pipe"],
      // Its own group, so a timeout can kill the file with every process it started.
      detached: true,
    });
    child.stdout.on("data", onOutput);
    child.stderr.on("data", onOutput);
    let timedOut = false;
    const deadline = setTimeout(() => {
      timedOut = true;
      killProcessTree(child.pid);
    }, timeoutMs);
    const abort = () => killProcessTree(child.pid);
    signal?.addEventListener("abort", abort);

    let exit = "";
    let graceTimer;
    const finish = () => {
      clearTimeout(deadline);
      clearTimeout(graceTimer);
      signal?.removeEventListener("abort", abort);
      child.stdout.destroy();
      child.stderr.destroy();
      resolve({ file, passed: exit === "exit code 0" && !timedOut, timedOut, exit });
    };
    child.once("exit", (code, exitSignal) => {
      exit = exitSignal ? `signal ${exitSignal}` : `exit code ${code}`;
      // A passing file may still leave a process behind; it must not outlive the run.
      killProcessGroup(child.pid);
      graceTimer = setTimeout(finish, PIPE_CLOSE_GRACE_MS);
    });
    child.once("close", finish);
    child.once("error", (error) => {
      exit = `spawn failed: ${error.message}`;
      finish();
    });
  });
}
