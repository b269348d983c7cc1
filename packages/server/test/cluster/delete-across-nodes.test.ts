// A delete reaches the services an instance has running on other nodes of a PostgreSQL cluster
// (two servers in this process, one schema). A service runs on the node that took the step
// starting it; a delete through another node used to leave one on node B running (holding its
// lease) until it answered or reached its settle deadline, and B took it for a service of the
// instance created again under that name: B's answers to that one waited for it (90 s by default).
// Now the delete's change notice has B stop the deleted instance's services at once, and only
// those: the notice names the deleted row, so one heard late spares the new instance's services.
// A B that missed the notice (its listening connection was cut) looks its instances up once the
// connection is back, and stops the services of those gone or made again.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { channelOf } from "../../src/store/postgres/index.js";
import type { InstanceKey } from "../../src/store/store.js";
import { twoClusterNodes, until } from "../support/two-cluster-nodes.js";
import { runOnPostgres } from "../support/store-target.js";

const MACHINE = "deleted-across";
const alice = { sub: "alice" };

await runOnPostgres("deletes across nodes", () => {
  // The default settle deadline (90 s): a request on B that waits for it fails the test.
  const nodes = twoClusterNodes("node_delete", "workflow-v5.js", MACHINE);
  const { runsOnB, history } = nodes;
  let instances = 0;

  async function rowIdOf(key: InstanceKey): Promise<number> {
    const instance = await nodes.a.server.backstate.store.loadInstance(key);
    assert.ok(instance, `instance ${key.instanceName} exists`);
    return instance.id;
  }

  /** Deletes the instance through A's admin API. */
  async function deleteThroughA(key: InstanceKey) {
    const response = await nodes.a.admin("DELETE", `/machines/${MACHINE}/i/${key.instanceName}`, {
      dangerDataWillBeDeletedForever: true,
      hmacSha256OfMachineInstanceNameWithMachineNameKey: createHmac("sha256", MACHINE)
        .update(key.instanceName)
        .digest("base64url"),
    });
    assert.equal(response.status, 204);
  }

  /**
   * An instance whose service (one that never answers) runs on node B; resolves with its key and
   * B's request that started it, answered once the service stops (with its instance gone: 404).
   */
  async function hangingOnB(name = `d${++instances}`) {
    const key = { orgId: nodes.a.orgId, machineName: MACHINE, instanceName: name };
    const engineB = nodes.b.server.backstate.engine;
    await engineB.createInstance({ ...key, authContext: alice });
    const sending = engineB.sendEvent({ ...key, event: "hang", authContext: alice });
    sending.catch(() => {});
    await until("the service to run on B", () => runsOnB(key));
    return { key, sending };
  }

  /**
   * The instance is created again through A, and B answers its first event without waiting for
   * anything of the deleted one (else it waits for its settle deadline: 90 s).
   */
  async function createdAgainAndAnsweredOnB(key: InstanceKey) {
    await nodes.a.server.backstate.engine.createInstance({ ...key, authContext: alice });
    const answered = nodes.b.server.backstate.engine.sendEvent({
      ...key,
      event: { type: "inc" },
      authContext: alice,
    });
    const first = await Promise.race([answered, sleep(5_000).then(() => "still waiting")]);
    assert.notEqual(first, "still waiting", "B's answer waited for the deleted instance's service");
    assert.deepEqual(await history(key), ["xstate.init", "inc"]);
  }

  /** Stops whatever of the instance is left running on B, whatever happened. */
  async function cleanUp(key: InstanceKey, sending: Promise<unknown>) {
    await nodes.b.server.backstate.engine.deleteInstance(key).catch(() => {});
    await sending.catch(() => {});
  }

  /** A client of its own on the cluster's database, for what the nodes would not do. */
  async function withClient<T>(work: (client: pg.Client, schema: string) => Promise<T>) {
    const { databaseUrl, postgres } = nodes.a.store.options;
    const schema = postgres?.schema;
    assert.ok(schema !== undefined, "the cluster has a schema of its own");
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      return await work(client, schema);
    } finally {
      await client.end();
    }
  }

  /** Deletes the instance's rows without a notice, as a delete B's listener missed looks to B. */
  async function deleteUnheard(key: InstanceKey) {
    const id = await rowIdOf(key);
    await withClient(async (client, schema) => {
      await client.query(`DELETE FROM "${schema}".timers WHERE instance_id = $1`, [id]);
      await client.query(`DELETE FROM "${schema}".transitions WHERE instance_id = $1`, [id]);
      const deleted = await client.query(`DELETE FROM "${schema}".instances WHERE id = $1`, [id]);
      assert.equal(deleted.rowCount, 1);
    });
  }

  /** Cuts B's listening connection: it reconnects, and looks up what it may have missed. */
  async function cutListenerOfB() {
    await withClient(async (client) => {
      const cut = await client.query(
        `SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity
         WHERE application_name = 'backstate-listener node_delete_b'`,
      );
      assert.equal(cut.rowCount, 1);
    });
  }

  describe("a delete through one node", () => {
    test("stops the instance's service on another node at once; the new instance of its name does not wait for it", async () => {
      const { key, sending } = await hangingOnB();
      try {
        await deleteThroughA(key);
        // B stops the service and ends its lease; its request finds the instance gone.
        await until(
          "B to stop the service of the deleted instance",
          async () => !(await runsOnB(key)),
        );
        await assert.rejects(sending, { code: "not-found" });
        await createdAgainAndAnsweredOnB(key);
      } finally {
        await cleanUp(key, sending);
      }
    });

    test("heard late, spares the services of the instance created again under its name", async () => {
      const { key, sending } = await hangingOnB();
      const deletedId = await rowIdOf(key);
      let again: Promise<unknown> = Promise.resolve();
      const marker = await hangingOnB();
      try {
        await deleteThroughA(key);
        await until("B to stop the deleted instance's service", async () => !(await runsOnB(key)));
        // Created again, and its service runs on B too.
        ({ sending: again } = await hangingOnB(key.instanceName));
        assert.notEqual(await rowIdOf(key), deletedId);
        // The first delete's notice, as B would hear it if it came only now (the wire format:
        // [origin, ["d", org, machine, instance, row id]]), then a delete of another instance
        // whose service runs on B: notices come in order, so once that one's service has
        // stopped, B has handled the late one.
        const late = JSON.stringify([
          "node_delete_a",
          ["d", key.orgId, key.machineName, key.instanceName, deletedId],
        ]);
        await withClient(async (client, schema) => {
          await client.query("SELECT pg_notify($1, $2)", [channelOf(schema), late]);
        });
        await deleteThroughA(marker.key);
        await until("B to stop the other deleted instance's service", async () => {
          return !(await runsOnB(marker.key));
        });
        assert.equal(await runsOnB(key), true, "the new instance's service was stopped");
        assert.deepEqual(await history(key), ["xstate.init", "hang"]);
      } finally {
        await cleanUp(key, again);
        await cleanUp(marker.key, marker.sending);
        await sending.catch(() => {});
      }
    });
  });

  describe("a delete a node missed (its listening connection was cut)", () => {
    test("stops its services there once the connection is back", async () => {
      const { key, sending } = await hangingOnB();
      try {
        await deleteUnheard(key);
        await cutListenerOfB();
        await until(
          "B to stop the service of the deleted instance",
          async () => !(await runsOnB(key)),
        );
        await assert.rejects(sending, { code: "not-found" });
        await createdAgainAndAnsweredOnB(key);
      } finally {
        await cleanUp(key, sending);
      }
    });

    test("stops them there too when the instance was created again meanwhile", async () => {
      const { key, sending } = await hangingOnB();
      try {
        await deleteUnheard(key);
        await nodes.a.server.backstate.engine.createInstance({ ...key, authContext: alice });
        await cutListenerOfB();
        await until(
          "B to stop the service of the deleted instance",
          async () => !(await runsOnB(key)),
        );
        const next = await nodes.b.server.backstate.engine.sendEvent({
          ...key,
          event: { type: "inc" },
          authContext: alice,
        });
        assert.equal(next.state, "idle");
        assert.deepEqual(await history(key), ["xstate.init", "inc"]);
      } finally {
        await cleanUp(key, sending);
      }
    });
  });
  return Promise.resolve();
});
