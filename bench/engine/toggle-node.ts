// A Backstate node serving the toggle machine, as both halves of bench/engine use it.
import { openBackstate, systemClock, type Backstate } from "@backstate/server";
import { runLoad } from "./load.js";
import { bundleToggle, instanceName } from "./toggle-machine.js";

const ORG = "org_benchmark00000000000000";
const CONCURRENCY = 64;

export { instanceName };

/** A node on `dataDir` with one org and the toggle machine as its current version. */
export async function openToggleNode(dataDir: string): Promise<Backstate> {
  const node = await openBackstate({ dataDir, clock: systemClock });
  await node.store.createOrg({ id: ORG, name: "bench", createdAt: Date.now() });
  await node.engine.createMachine(ORG, "toggle");
  await node.engine.createMachineVersion({
    orgId: ORG,
    machineName: "toggle",
    code: await bundleToggle(),
    makeCurrent: true,
  });
  return node;
}

/** Creates instances i<from> … i<to - 1>, 64 at a time. */
export async function createInstances(node: Backstate, from: number, to: number): Promise<void> {
  await runLoad(to - from, CONCURRENCY, (i) => createInstance(node, instanceName(from + i)));
}

export function createInstance(node: Backstate, name: string): Promise<unknown> {
  return node.engine.createInstance({
    orgId: ORG,
    machineName: "toggle",
    instanceName: name,
    authContext: {},
  });
}

export function sendToggle(node: Backstate, name: string): Promise<unknown> {
  return node.engine.sendEvent({
    orgId: ORG,
    machineName: "toggle",
    instanceName: name,
    event: { type: "toggle" },
    authContext: {},
  });
}
