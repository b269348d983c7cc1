// A process for the crash test: runs the engine on a data dir under concurrent load and prints
// `ack <event id>` for every acknowledged event, until it is killed. Modes:
//   setup <dir> <reportUrl>  creates the machine and instances, then exits;
//   load <dir>               sends events forever;
//   drain <dir>              runs until no timer is pending and no instance is armed, then exits.
import { randomUUID } from "node:crypto";
import { systemClock } from "../../src/engine/clock.js";
import { ORG, startHarness } from "./engine-harness.js";

export const INSTANCES = 12;
export const MACHINE = "crash";
const [mode, dir, reportUrl] = process.argv.slice(2);
if (!dir) throw new Error("usage: crash-worker <mode> <dir> [reportUrl]");

// The machine reports to the test's local server (reportUrl): a private address.
const h = await startHarness(
  { clock: systemClock, timerLeaseMs: 500, settleTimeoutMs: 5000, allowPrivateNetworkFetch: true },
  dir,
);
const at = (i: number) => ({ orgId: ORG, machineName: MACHINE, instanceName: `c${i}` });

if (mode === "setup") {
  await h.deploy("crash-v5.js", "v5-import", MACHINE);
  for (let i = 0; i < INSTANCES; i++) {
    await h.engine.createInstance({
      ...at(i),
      context: { reportUrl, name: `c${i}` },
      authContext: {},
    });
  }
  await h.stop();
  process.exit(0);
}

if (mode === "load") {
  process.stdout.write("ready\n");
  const sendOne = async () => {
    const id = randomUUID();
    const type = Math.random() < 0.2 ? "arm" : "inc";
    const i = Math.floor(Math.random() * INSTANCES);
    await h.engine.sendEvent({ ...at(i), event: { type, id }, authContext: {} });
    process.stdout.write(`ack ${id}\n`);
  };
  const worker = async () => {
    for (;;) await sendOne().catch(() => undefined);
  };
  await Promise.all(Array.from({ length: 16 }, worker));
}

if (mode === "drain") {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const due = await h.store.nextTimerDue();
    const states = await Promise.all(
      Array.from({ length: INSTANCES }, (_, i) =>
        h.engine.readInstance({ ...at(i), authContext: {} }),
      ),
    );
    const armed = states.filter((s) => s.state === "armed").length;
    if ((due === undefined && armed === 0) || Date.now() > deadline) {
      process.stdout.write(`drained ${JSON.stringify({ due: due ?? null, armed })}\n`);
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await h.stop();
  process.exit(0);
}
