// A process for the self-send crash test. Modes:
//   ping <dir>    deploys slow-pong-v5.js, creates instance `p` and sends it `ping`, whose `pong`
//                 spins in the sandbox; prints `committed` once the ping's commit is stored, and
//                 waits to be killed;
//   settle <dir>  restarts on the data dir, waits (up to 15 s) for every ping's pong, prints
//                 `context <json>` and exits.
import { systemClock } from "../../src/engine/clock.js";
import { ORG, startHarness } from "./engine-harness.js";

const [mode, dir] = process.argv.slice(2);
if (!dir) throw new Error("usage: self-send-crash-worker <mode> <dir>");

// A short backstop: the test need not wait out the default (the service lease).
const h = await startHarness(
  { clock: systemClock, timerLeaseMs: 500, selfEventBackstopMs: 500 },
  dir,
);
const at = { orgId: ORG, machineName: "pong", instanceName: "p" };
type Counts = { pings: number; pongs: number };
const counts = async (): Promise<Counts> => {
  const instance = await h.store.loadInstance(at);
  const match = /"pings":(\d+),"pongs":(\d+)/.exec(instance?.snapshot ?? "");
  return { pings: Number(match?.[1] ?? -1), pongs: Number(match?.[2] ?? -1) };
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

if (mode === "ping") {
  await h.deploy("slow-pong-v5.js", "v5-import", "pong");
  await h.engine.createInstance({ ...at, context: {}, authContext: {} });
  void h.engine.sendEvent({ ...at, event: { type: "ping", spinMs: 3000 }, authContext: {} });
  while ((await counts()).pings < 1) await sleep(10);
  process.stdout.write("committed\n");
  await new Promise(() => {});
}

if (mode === "settle") {
  const deadline = Date.now() + 15_000;
  let now = await counts();
  while (now.pongs < now.pings && Date.now() < deadline) {
    await sleep(100);
    now = await counts();
  }
  process.stdout.write(`context ${JSON.stringify(now)}\n`);
  await h.stop();
  process.exit(0);
}
