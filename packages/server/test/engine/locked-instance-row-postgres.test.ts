// On PostgreSQL, another transaction (another node's, an operator's) may hold an instance's row
// locked without changing it. An event sent meanwhile must wait for that lock and then commit:
// nothing changed the instance, so refusing it (a 409 for the client) would be a conflict that
// never happened.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { systemClock } from "../../src/engine/clock.js";
import type { Store, TransitionCommit } from "../../src/store/store.js";
import { ORG, startHarness, type Harness } from "../support/engine-harness.js";
import { overriding } from "../support/overriding-store.js";
import { TestSchemas, testDatabaseUrl } from "../store/postgres-support.js";

const url = testDatabaseUrl("engine: locked instance row (postgres)");

if (url !== undefined) {
  const schemas = new TestSchemas(url);
  const schema = schemas.fresh();
  let node: Harness;

  before(async () => {
    node = await startHarness({ clock: systemClock, databaseUrl: url, postgres: { schema } });
    await node.deploy("workflow-v5.js", "v5-import", "shared");
  });
  after(async () => {
    await node.dispose();
  });

  const at = (instanceName: string) => ({ orgId: ORG, machineName: "shared", instanceName });

  /** Holds the instance's row locked `mode`, in a transaction of its own, until released. */
  async function lockRow(
    instanceName: string,
    mode: string,
  ): Promise<{ pid: number; release(): Promise<void> }> {
    const client = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
    await client.connect();
    await client.query("BEGIN");
    await client.query(`SELECT 1 FROM instances WHERE org_id = $1 AND name = $2 FOR ${mode}`, [
      ORG,
      instanceName,
    ]);
    const pid = (await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!;
    return {
      pid: pid.pid,
      async release() {
        await client.query("COMMIT");
        await client.end();
      },
    };
  }

  /** Resolves once some session waits for `pid`'s locks, or `settled` says the event is over. */
  async function someoneWaitsFor(pid: number, settled: () => boolean): Promise<void> {
    const watcher = new pg.Client({ connectionString: url });
    await watcher.connect();
    try {
      for (;;) {
        if (settled()) return;
        const waiting = await watcher.query(
          "SELECT 1 FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))",
          [pid],
        );
        if (waiting.rowCount !== 0) return;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    } finally {
      await watcher.end();
    }
  }

  describe("engine: locked instance row (postgres)", () => {
    for (const mode of ["SHARE", "NO KEY UPDATE", "UPDATE"]) {
      test(`an event to an instance whose row another transaction holds FOR ${mode} waits and commits`, async () => {
        const name = `locked-${mode.replace(/ /g, "-").toLowerCase()}`;
        await node.engine.createInstance({ ...at(name), authContext: { sub: "alice" } });
        const lock = await lockRow(name, mode);
        // Settled here as soon as the event is answered, whichever way.
        const seen: { outcome?: PromiseSettledResult<unknown> } = {};
        const sent = node.engine
          .sendEvent({ ...at(name), event: "inc", authContext: { sub: "alice" } })
          .then(
            (value) => (seen.outcome = { status: "fulfilled", value }),
            (reason: unknown) => (seen.outcome = { status: "rejected", reason }),
          );
        try {
          await someoneWaitsFor(lock.pid, () => seen.outcome !== undefined);
          assert.equal(seen.outcome, undefined, "the event was answered while the row was locked");
        } finally {
          await lock.release();
        }
        await sent;
        const answered = seen.outcome as PromiseSettledResult<unknown> | undefined;
        assert.equal(
          answered?.status,
          "fulfilled",
          answered?.status === "rejected" ? String(answered.reason) : "",
        );
        const state = await node.engine.readInstance({
          ...at(name),
          authContext: { sub: "alice" },
        });
        assert.equal((state.publicContext as { count: number }).count, 1);
        const history = await node.store.listTransitions(at(name), { limit: 10 });
        assert.deepEqual(
          history.map((t) => t.sequence),
          [1, 2],
        );
      });
    }

    test("an event the machine sends itself, while another transaction holds the row, waits and commits", async () => {
      // XState 4's send() to itself is a commit of its own, after the one of the event that sent
      // it: the row is held from the moment that second commit is sent until someone waits.
      const name = "self-sent";
      let armed = true;
      const wrapStore = (store: Store): Store =>
        overriding(store, {
          commitTransition: async (commit: TransitionCommit) => {
            const event = JSON.parse(commit.transition.event) as { type: string };
            if (!armed || commit.kind !== "event" || event.type !== "inc") {
              return store.commitTransition(commit);
            }
            armed = false;
            const lock = await lockRow(name, "SHARE");
            let settled = false;
            const committing = store.commitTransition(commit);
            committing.then(
              () => (settled = true),
              () => (settled = true),
            );
            try {
              await someoneWaitsFor(lock.pid, () => settled);
            } finally {
              await lock.release();
            }
            return committing;
          },
        });
      const other = await startHarness({
        clock: systemClock,
        databaseUrl: url,
        postgres: { schema },
        wrapStore,
      });
      try {
        const machine = await other.deploy("workflow-v4.js", "v4-cli", "sender-v4");
        const address = { orgId: ORG, machineName: machine, instanceName: name };
        await other.engine.createInstance({ ...address, authContext: { sub: "alice" } });
        const state = await other.engine.sendEvent({
          ...address,
          event: "bounce",
          authContext: { sub: "alice" },
        });
        assert.equal(armed, false, "the self-sent event was committed through the wrapper");
        assert.equal((state.publicContext as { count: number }).count, 1);
        const history = await other.store.listTransitions(address, { limit: 10 });
        assert.deepEqual(
          history.map((t) => (JSON.parse(t.event) as { type: string }).type),
          ["xstate.init", "bounce", "inc"],
        );
      } finally {
        await other.dispose();
      }
    });
  });
}
