// Two servers of one PostgreSQL cluster in this process, node A and node B, with a machine on
// A, for tests of what one node's write does to the services the other runs.
import assert from "node:assert/strict";
import { after, before } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { InstanceKey } from "../../src/store/store.js";
import { startAnotherNode, startApiServer, type ApiServer } from "./api-server.js";

export type TwoClusterNodes = {
  readonly a: ApiServer;
  readonly b: ApiServer;
  /** Whether node B's lease says it runs services of the instance (it ends once none runs). */
  runsOnB: (key: InstanceKey) => Promise<boolean>;
  /** The instance's history, as its events' types, oldest first. */
  history: (key: InstanceKey) => Promise<string[]>;
};

/**
 * Starts the two nodes (ids `<prefix>_a` and `<prefix>_b`, one sandbox each) before the tests,
 * deploys `fixture` as `machine`, and disposes of both after them.
 */
export function twoClusterNodes(prefix: string, fixture: string, machine: string): TwoClusterNodes {
  let a: ApiServer | undefined;
  let b: ApiServer | undefined;
  before(async () => {
    a = await startApiServer({ nodeId: `${prefix}_a`, sandboxes: { size: 1 } });
    b = await startAnotherNode(a, { nodeId: `${prefix}_b`, sandboxes: { size: 1 } });
    await a.deploy(fixture, "v5-import", machine);
  });
  after(async () => {
    await b?.dispose();
    await a?.dispose();
  });
  const started = (node: ApiServer | undefined) => {
    assert.ok(node, "the nodes are started before the tests");
    return node;
  };
  return {
    get a() {
      return started(a);
    },
    get b() {
      return started(b);
    },
    runsOnB: (key) =>
      started(a).server.backstate.store.servicesLeasedElsewhere(key, `${prefix}_a`, Date.now()),
    async history(key) {
      const rows = await started(a).server.backstate.store.listTransitions(key, { limit: 20 });
      return rows.map((row) => (JSON.parse(row.event) as { type: string }).type);
    },
  };
}

/** Waits until `predicate` holds, for about 5 s, failing the test with `what` otherwise. */
export async function until(what: string, predicate: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 250; i++) {
    if (await predicate()) return;
    await sleep(20);
  }
  assert.fail(`timed out waiting for ${what}`);
}
