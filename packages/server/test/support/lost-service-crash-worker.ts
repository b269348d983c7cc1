// A process for the lost-service crash test, on a claimed data dir as `backstate serve` runs.
// Modes:
//   hang <dir>     deploys workflow-v5.js, creates instance `w` and sends it `hang` (a service
//                  that never answers); prints `started` once the step is stored with the service
//                  pending, and waits to be killed;
//   restart <dir>  starts again on the data dir, sends nothing, and prints `state <value>` once
//                  the instance has left `hanging` (or after 10 s).
import { systemClock } from "../../src/engine/clock.js";
import { ORG, startHarness } from "./engine-harness.js";

const [mode, dir] = process.argv.slice(2);
if (!dir) throw new Error("usage: lost-service-crash-worker <mode> <dir>");

const h = await startHarness({ clock: systemClock, claimDataDir: true }, dir);
const at = { orgId: ORG, machineName: "workflow", instanceName: "w" };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

if (mode === "hang") {
  await h.deploy("workflow-v5.js", "v5-import", "workflow");
  await h.engine.createInstance({ ...at, context: {}, authContext: {} });
  void h.engine.sendEvent({ ...at, event: { type: "hang" }, authContext: {} }).catch(() => {});
  while (((await h.store.loadInstance(at))?.pendingServices.length ?? 0) === 0) await sleep(10);
  process.stdout.write("started\n");
  await new Promise(() => {});
}

if (mode === "restart") {
  const deadline = Date.now() + 10_000;
  const read = async () => (await h.engine.readInstance({ ...at, authContext: {} })).state;
  let state = await read();
  while (state === "hanging" && Date.now() < deadline) {
    await sleep(100);
    state = await read();
  }
  process.stdout.write(`state ${JSON.stringify(state)}\n`);
  await h.stop();
  process.exit(0);
}
