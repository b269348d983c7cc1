// A pause reaches the services an instance has running on other nodes of a PostgreSQL cluster (two
// servers in this process, one schema). A service runs on the node that took the step starting it;
// a pause through another node used to stop only that node's services, so one on node B ran on
// (holding its lease) until it answered or reached its settle deadline, and the first event after
// the resume found it still running: its error event did not come first, as it does on one node.
// Now the pause's change notice has B stop it at once; and a B that missed the notice (its
// listening connection was cut) looks for paused instances among those it runs services for when
// the connection is back. A notice heard late stops nothing of an instance created since under the
// same name: the notice names the paused row.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import pg from "pg";
import { channelOf } from "../../src/store/postgres/index.js";
import type { InstanceKey } from "../../src/store/store.js";
import { twoClusterNodes, until } from "../support/two-cluster-nodes.js";
import { runOnPostgres } from "../support/store-target.js";

const MACHINE = "paused-across";
const alice = { sub: "alice" };

await runOnPostgres("pauses across nodes", () => {
  // The default settle deadline (90 s): a request on B that waits for it fails the test.
  const nodes = twoClusterNodes("node_pause", "workflow-v5.js", MACHINE);
  const { runsOnB, history } = nodes;
  let instances = 0;

  const statusPath = (key: InstanceKey) => `/machines/${MACHINE}/i/${key.instanceName}/status`;

  /**
   * An instance whose service (one that never answers) runs on node B; resolves with its key and
   * B's request that started it, answered once the service stops.
   */
  async function hangingOnB(name = `p${++instances}`) {
    const key = { orgId: nodes.a.orgId, machineName: MACHINE, instanceName: name };
    const engineB = nodes.b.server.backstate.engine;
    await engineB.createInstance({ ...key, authContext: alice });
    const sending = engineB.sendEvent({ ...key, event: "hang", authContext: alice });
    await until("the service to run on B", () => runsOnB(key));
    return { key, sending };
  }

  /** Resumes through A and sends an event through A: the stopped service's error comes first. */
  async function resumeAndCheck(key: InstanceKey) {
    assert.equal((await nodes.a.admin("PUT", statusPath(key), { status: "running" })).status, 204);
    const next = await nodes.a.server.backstate.engine.sendEvent({
      ...key,
      event: { type: "inc" },
      authContext: alice,
    });
    assert.deepEqual(await history(key), [
      "xstate.init",
      "hang",
      "xstate.error.actor.never",
      "inc",
    ]);
    assert.equal(next.state, "failed");
  }

  describe("a pause through one node", () => {
    test("stops the instance's service running on another node at once", async () => {
      const { key, sending } = await hangingOnB();
      try {
        assert.equal(
          (await nodes.a.admin("PUT", statusPath(key), { status: "paused" })).status,
          204,
        );
        // B stops the service and ends its lease; its request is answered as settled.
        await until(
          "B to stop the service of the paused instance",
          async () => !(await runsOnB(key)),
        );
        await sending;
        await resumeAndCheck(key);
      } finally {
        // Whatever happened, nothing of it is left running on B.
        await nodes.b.server.backstate.engine.setInstanceStatus({ ...key, status: "paused" });
        await sending.catch(() => {});
      }
    });

    test("reaches a node that missed its notice once that node's listening connection is back", async () => {
      const { key, sending } = await hangingOnB();
      const { databaseUrl, postgres } = nodes.a.store.options;
      const client = new pg.Client({ connectionString: databaseUrl });
      await client.connect();
      try {
        // Paused without a notice (as if B's listening connection had been down when it was sent),
        // then B's listening connection is cut: it reconnects, and what it missed is looked up.
        const paused = await client.query(
          `UPDATE "${postgres!.schema}".instances SET status = 'paused'
           WHERE org_id = $1 AND machine_name = $2 AND name = $3`,
          [key.orgId, key.machineName, key.instanceName],
        );
        assert.equal(paused.rowCount, 1);
        const cut = await client.query(
          `SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity
           WHERE application_name = 'backstate-listener node_pause_b'`,
        );
        assert.equal(cut.rowCount, 1);
        await until(
          "B to stop the service of the paused instance",
          async () => !(await runsOnB(key)),
        );
        await sending;
        await resumeAndCheck(key);
      } finally {
        await client.end();
        await nodes.b.server.backstate.engine.setInstanceStatus({ ...key, status: "paused" });
        await sending.catch(() => {});
      }
    });

    test("heard late, spares the services of an instance created since under the same name", async () => {
      // An instance paused at sequence 4 through A, then deleted; B hears of the pause only once
      // a new instance of that name runs a service there, started by a step of a lower sequence.
      const name = `p${++instances}`;
      const old = { orgId: nodes.a.orgId, machineName: MACHINE, instanceName: name };
      const engineA = nodes.a.server.backstate.engine;
      await engineA.createInstance({ ...old, authContext: alice });
      for (let i = 0; i < 3; i++) {
        await engineA.sendEvent({ ...old, event: { type: "inc" }, authContext: alice });
      }
      const paused = (await nodes.a.server.backstate.store.loadInstance(old))!;
      assert.equal(paused.sequence, 4);
      await engineA.deleteInstance(old);
      const { key, sending } = await hangingOnB(name);
      const marker = await hangingOnB();
      const client = new pg.Client({ connectionString: nodes.a.store.options.databaseUrl });
      await client.connect();
      try {
        // The pause's notice as B would hear it now ([origin, ["p", org, machine, instance,
        // sequence, row id]]), then a pause of another instance whose service runs on B:
        // notices come in order, so once that one's service has stopped, B has handled the first.
        const late = JSON.stringify([
          "node_pause_a",
          ["p", old.orgId, old.machineName, old.instanceName, paused.sequence, paused.id],
        ]);
        const channel = channelOf(nodes.a.store.options.postgres!.schema);
        await client.query("SELECT pg_notify($1, $2)", [channel, late]);
        const pausing = await nodes.a.admin("PUT", statusPath(marker.key), { status: "paused" });
        assert.equal(pausing.status, 204);
        await until("B to stop the other paused instance's service", async () => {
          return !(await runsOnB(marker.key));
        });
        assert.equal(await runsOnB(key), true, "the new instance's service was stopped");
        assert.deepEqual(await history(key), ["xstate.init", "hang"]);
      } finally {
        await client.end();
        await nodes.b.server.backstate.engine.setInstanceStatus({ ...key, status: "paused" });
        await sending.catch(() => {});
        await marker.sending.catch(() => {});
      }
    });
  });
  return Promise.resolve();
});
