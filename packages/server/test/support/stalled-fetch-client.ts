// A client process for the keep-alive test: Node's global fetch, frozen for a while between two
// requests to the same server, the way a busy or descheduled process is. It fetches `url` once,
// then blocks its event loop from shortly after until past the keep-alive timeout the server
// advertised, and sends its second request the moment it wakes (before its own idle timer, or
// any news of the connection closing, is looked at), on the connection the first one used.
// Prints one JSON line: the advertised Keep-Alive header, how long the connection was idle,
// and the second request's status or error.
import { Worker } from "node:worker_threads";

const [url] = process.argv.slice(2);
if (!url) throw new Error("usage: stalled-fetch-client <url>");

// The wake-up call comes from another thread: a timer here would wait for the stall to end.
const alarm = new Worker(
  `const { parentPort } = require("node:worker_threads");
   parentPort.once("message", (ms) => setTimeout(() => parentPort.postMessage("wake"), ms));`,
  { eval: true },
);

const first = await fetch(url);
await first.text();
const idleSince = Date.now();
const advertised = first.headers.get("keep-alive");
const timeoutMs = Number(/timeout=(\d+)/.exec(advertised ?? "")?.[1] ?? 5) * 1000;

// The wake-up is queued while the server still holds the connection, so it is handled before
// the connection's end once the stall is over: the second request goes out on that connection.
alarm.postMessage(timeoutMs - 1000);
alarm.once("message", () => {
  const idleMs = Date.now() - idleSince;
  fetch(url)
    .then(async (second) => {
      await second.text();
      return { status: second.status };
    })
    .catch((err: Error & { cause?: { code?: string; message?: string } }) => ({
      error: `${err.message}: ${err.cause?.code ?? ""} ${err.cause?.message ?? ""}`,
    }))
    .then(async (outcome) => {
      process.stdout.write(JSON.stringify({ advertised, idleMs, ...outcome }) + "\n");
      await alarm.terminate();
    })
    .catch(() => process.exit(1));
});

setTimeout(() => {
  while (Date.now() - idleSince < timeoutMs + 1500) {
    // Busy, as a process starved of CPU or paused by its GC is: nothing else runs.
  }
}, 500);
