// PostgreSQL with many nodes: several store objects (each its own pool, as separate server
// processes would have) on one schema, starting, claiming timers and committing at the same time.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { PostgresStore } from "../../src/store/postgres/index.js";
import type { TimerRecord } from "../../src/store/store.js";
import {
  T0,
  createCommit,
  createInstance,
  eventCommit,
  instanceKey,
  outcomeCode,
  seedMachine,
  timer,
} from "./fixtures.js";
import { TestSchemas, testDatabaseUrl } from "./postgres-support.js";

const url = testDatabaseUrl("postgres: many nodes");

const LEASE = 30_000;

if (url !== undefined) {
  const schemas = new TestSchemas(url);

  /** Opens `count` migrated stores on one fresh schema, runs `body`, closes them all. */
  async function withNodes(
    count: number,
    body: (nodes: PostgresStore[]) => Promise<void>,
  ): Promise<void> {
    const schema = schemas.fresh();
    const nodes: PostgresStore[] = [];
    try {
      // One after the other: what starting together does is the first test's subject.
      for (let i = 0; i < count; i++) nodes.push(await schemas.migrated(schema));
      await body(nodes);
    } finally {
      await Promise.all(nodes.map((node) => node.close()));
    }
  }

  function two(nodes: readonly PostgresStore[]): [PostgresStore, PostgresStore] {
    const [a, b] = nodes;
    assert.ok(a && b);
    return [a, b];
  }

  describe("postgres: many nodes", () => {
    test("nodes migrating an empty schema at once apply each migration exactly once", async () => {
      const schema = schemas.fresh();
      const nodes = Array.from({ length: 4 }, () => schemas.open(schema));
      try {
        const outcomes = await Promise.allSettled(nodes.map((node) => node.migrate()));
        assert.deepEqual(
          outcomes.map(outcomeCode),
          ["ok", "ok", "ok", "ok"],
          JSON.stringify(outcomes.filter((outcome) => outcome.status === "rejected")),
        );
        const applied = await schemas.sql(schema, async (client) => {
          const result = await client.query<{ version: number; name: string }>(
            "SELECT version, name FROM schema_migrations ORDER BY version",
          );
          return result.rows;
        });
        assert.deepEqual(applied, [
          { version: 1, name: "0001-init.sql" },
          { version: 2, name: "0002-api.sql" },
          { version: 3, name: "0003-token-exchange.sql" },
          { version: 4, name: "0004-idp-grantable-scopes.sql" },
          { version: 5, name: "0005-service-leases.sql" },
          { version: 6, name: "0006-version-index-selectors.sql" },
          { version: 7, name: "0007-batch-outcomes.sql" },
          { version: 8, name: "0008-timers-by-org.sql" },
          { version: 9, name: "0009-service-leases-by-until.sql" },
          { version: 10, name: "0010-history-purges.sql" },
          { version: 11, name: "0011-timers-sharing-a-key.sql" },
        ]);
        // Every node works on the one schema they made.
        const [first, second] = nodes;
        assert.ok(first && second);
        await first.createOrg({ id: "org_a", name: "A", createdAt: T0 });
        assert.equal((await second.getOrg("org_a"))?.name, "A");
      } finally {
        await Promise.all(nodes.map((node) => node.close()));
      }
    });

    test("nodes claiming due timers at once never claim the same timer while it is leased", () =>
      withNodes(2, async (nodes) => {
        const [a, b] = two(nodes);
        await seedMachine(a, "org_a");
        // 40 instances with 5 timers each, all due by 1000.
        await Promise.all(
          Array.from({ length: 40 }, (_, i) =>
            createInstance(a, instanceKey("org_a", `i${i}`), {
              timersToArm: Array.from({ length: 5 }, (_, t) => timer(`t${t}`, 100 + t * 100)),
            }),
          ),
        );

        // Three claim loops per node, all at once, until each finds nothing left to take.
        const race = async (now: number): Promise<TimerRecord[]> => {
          const loop = async (node: PostgresStore): Promise<TimerRecord[]> => {
            const mine: TimerRecord[] = [];
            for (;;) {
              const claimed = await node.claimDueTimers(now, 7, LEASE);
              if (claimed.length === 0) return mine;
              mine.push(...claimed);
            }
          };
          const loops = await Promise.all([a, b, a, b, a, b].map(loop));
          return loops.flat();
        };

        const first = await race(1000);
        const ids = first.map((claimed) => claimed.id);
        assert.equal(new Set(ids).size, ids.length, "a timer was claimed twice");
        assert.equal(ids.length, 200, "every due timer was claimed");
        assert.deepEqual(await a.claimDueTimers(1000 + LEASE - 1, 1000, LEASE), []);
        assert.deepEqual(await b.claimDueTimers(1000 + LEASE - 1, 1000, LEASE), []);

        // The leases lapse: the same race again, over timers that were claimed before.
        const second = await race(1000 + LEASE);
        const again = second.map((claimed) => claimed.id);
        assert.equal(new Set(again).size, again.length, "a timer was claimed twice");
        assert.deepEqual([...again].sort(), [...ids].sort());
      }));

    test("two nodes committing to one instance: one commit wins, the other conflicts", () =>
      withNodes(2, async (nodes) => {
        const [a, b] = two(nodes);
        await seedMachine(a, "org_a");
        const key = instanceKey("org_a", "i1");
        const id = await createInstance(a, key);
        for (let sequence = 1; sequence <= 10; sequence++) {
          const outcomes = await Promise.allSettled([
            a.commitTransition(eventCommit(key, id, sequence, { snapshot: '"a"' })),
            b.commitTransition(eventCommit(key, id, sequence, { snapshot: '"b"' })),
          ]);
          const codes = outcomes.map(outcomeCode).sort();
          assert.deepEqual(codes, ["conflict", "ok"], `round ${sequence}`);
          const winner = outcomes[0]?.status === "fulfilled" ? '"a"' : '"b"';
          const loaded = await b.loadInstance(key);
          assert.equal(loaded?.sequence, sequence + 1);
          assert.equal(loaded?.snapshot, winner);
        }
        assert.equal((await a.listTransitions(key, { limit: 100 })).length, 11);
      }));

    // The bound only fails on a real hang (say, commits waiting on each other's rows forever);
    // a deadlock PostgreSQL breaks is caught by the conflicts' messages instead.
    test(
      "two nodes' batches crossing over two instances: each has one winner, and no deadlock",
      { timeout: 60_000 },
      () =>
        withNodes(2, async (nodes) => {
          const [a, b] = two(nodes);
          await seedMachine(a, "org_a");
          // Round 1's commits are plain events, written by one set-based statement; round 2's
          // arm a timer each, so each is written by a statement of its own.
          for (const round of [1, 2]) {
            const extra = round === 1 ? {} : { timersToArm: [timer("t", 5_000)] };
            const x = instanceKey("org_a", `x${round}`);
            const y = instanceKey("org_a", `y${round}`);
            const idX = await createInstance(a, x);
            const idY = await createInstance(a, y);
            // Both nodes have a connection open, so their batches start together.
            await Promise.all([a.loadInstance(x), b.loadInstance(y)]);
            // Opposite orders. Locking rows as given and waiting for them, the two transactions
            // would wait for each other (a deadlock PostgreSQL breaks after deadlock_timeout by
            // failing one, whose commits then "lost a race"); a batch takes rows in key order and
            // never waits for a row while holding others, so neither waits for the other. Whoever
            // loses an instance gets a conflict (never a store error), and the rest of its batch
            // still commits.
            const outcomes = await Promise.allSettled([
              a.commitTransition(eventCommit(x, idX, 1, { ...extra, snapshot: '"a"' })),
              a.commitTransition(eventCommit(y, idY, 1, { ...extra, snapshot: '"a"' })),
              b.commitTransition(eventCommit(y, idY, 1, { ...extra, snapshot: '"b"' })),
              b.commitTransition(eventCommit(x, idX, 1, { ...extra, snapshot: '"b"' })),
            ]);
            const [aX, aY, bY, bX] = outcomes.map(outcomeCode);
            assert.deepEqual([aX, bX].sort(), ["conflict", "ok"], `x: ${aX}, ${bX}`);
            assert.deepEqual([aY, bY].sort(), ["conflict", "ok"], `y: ${aY}, ${bY}`);
            // Each loser found the row already moved on: a conflict on its expected sequence, not
            // a transaction PostgreSQL picked to give way in a deadlock ("lost a race").
            for (const outcome of outcomes) {
              if (outcome.status === "fulfilled") continue;
              assert.match(
                (outcome.reason as Error).message,
                /is no longer running at sequence 1 /,
              );
            }
            assert.equal((await a.loadInstance(x))?.snapshot, aX === "ok" ? '"a"' : '"b"');
            assert.equal((await a.loadInstance(y))?.snapshot, aY === "ok" ? '"a"' : '"b"');
            assert.equal((await b.loadInstance(x))?.sequence, 2);
            assert.equal((await b.loadInstance(y))?.sequence, 2);
            // One transition each after the creation: the loser wrote nothing.
            assert.equal((await b.listTransitions(x, { limit: 10 })).length, 2);
            assert.equal((await b.listTransitions(y, { limit: 10 })).length, 2);
          }
        }),
    );

    test("nodes creating the same instance, or the same setting, agree on one", () =>
      withNodes(3, async (nodes) => {
        const [a] = nodes;
        assert.ok(a);
        await seedMachine(a, "org_a");
        const key = instanceKey("org_a", "i1");
        const outcomes = await Promise.allSettled(
          nodes.map((node, i) =>
            node.commitTransition(createCommit(key, { snapshot: JSON.stringify(i) })),
          ),
        );
        assert.deepEqual(outcomes.map(outcomeCode).sort(), [
          "already-exists",
          "already-exists",
          "ok",
        ]);
        const winner = outcomes.findIndex((outcome) => outcome.status === "fulfilled");
        assert.equal((await a.loadInstance(key))?.snapshot, JSON.stringify(winner));

        const values = await Promise.all(
          nodes.map((node, i) => node.ensureSetting("server-secret", `secret-${i}`)),
        );
        assert.equal(new Set(values).size, 1, values.join(", "));
      }));

    test("a version finalized on one node closes its upload id on every node", () =>
      withNodes(2, async (nodes) => {
        const [a, b] = two(nodes);
        await seedMachine(a, "org_a", "m", "ver_1");
        const upload = {
          orgId: "org_a",
          machineName: "m",
          id: "ver_2",
          code: "export default 2",
          createdAt: T0,
        };
        // The upload and the finalize of the same id, racing: whichever order they land in, the
        // version ends up existing and no upload of its id is left behind.
        const [put] = await Promise.allSettled([
          b.putCodeUpload(upload),
          a.createMachineVersion(
            {
              ...upload,
              hash: "00".repeat(32),
              clientInfo: undefined,
              indexSelectors: undefined,
            },
            true,
          ),
        ]);
        assert.ok(["ok", "already-exists"].includes(outcomeCode(put) ?? ""), outcomeCode(put));
        assert.equal((await b.getMachineVersion("org_a", "m", "ver_2"))?.code, upload.code);
        assert.equal(await a.getCodeUpload("org_a", "m", "ver_2"), undefined);
      }));
  });
}
