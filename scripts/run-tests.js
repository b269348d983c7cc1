// Runs every test file (compiled `*.test.js` under each workspace's dist/, and the tooling's
// own tests under scripts/) with Node's test runner, one process per file, each under a time
// limit so that a file that hangs fails on its own instead of holding up the whole run.
import { availableParallelism } from "node:os";
import { findTestFiles } from "./test-runner/find-test-files.js";
import { runTestFiles, summarize } from "./test-runner/run-test-files.js";

const DEFAULT_FILE_TIMEOUT_MS = 10 * 60 * 1000;

function fileTimeoutMs() {
  const text = process.env.BACKSTATE_TEST_FILE_TIMEOUT_MS;
  if (text === undefined || text === "") return DEFAULT_FILE_TIMEOUT_MS;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value <= 0) {
    console.error(`BACKSTATE_TEST_FILE_TIMEOUT_MS must be a positive whole number of ms: ${text}`);
    process.exit(1);
  }
  return value;
}

const timeoutMs = fileTimeoutMs();
const files = findTestFiles(process.cwd());
// Extra arguments narrow the run: `npm test -- token` runs only files whose path contains "token".
const filters = process.argv.slice(2);
const selected = filters.length ? files.filter((f) => filters.some((x) => f.includes(x))) : files;
if (selected.length === 0) {
  console.error("no test files found; did the build run?");
  process.exit(1);
}

// The files' processes lead groups of their own, out of reach of a terminal's Ctrl-C, so an
// interrupted run kills them itself.
const interrupted = new AbortController();
for (const name of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.once(name, () => {
    interrupted.abort();
    process.exitCode = 1;
  });
}

const results = await runTestFiles(selected, {
  // What `node --test` runs at once by default.
  concurrency: Math.max(availableParallelism() - 1, 1),
  timeoutMs,
  // Their output is piped here, so Node would pick TAP; a terminal reads spec better.
  nodeArgs: process.stdout.isTTY ? ["--test-reporter=spec"] : [],
  out: process.stdout,
  signal: interrupted.signal,
});
process.stdout.write(summarize(results));
process.exitCode = results.every((result) => result?.passed) && !interrupted.signal.aborted ? 0 : 1;
