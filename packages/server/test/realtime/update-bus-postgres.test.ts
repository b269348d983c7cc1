// The PostgreSQL update bus on its own: notices sent with NOTIFY on a schema's channel become bus
// updates on every other node, a node skips its own, and a listening connection that is cut is
// replaced, with a resync for what was missed meanwhile.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { silentLogger, type Logger } from "../../src/engine/logger.js";
import type { BusUpdate } from "../../src/realtime/update-bus.js";
import { PostgresUpdateBus } from "../../src/realtime/update-bus-postgres.js";
import {
  MAX_PAYLOAD_BYTES,
  channelOf,
  decode,
  encodeChange,
  payloads,
  type Change,
} from "../../src/store/postgres/notices.js";
import { testDatabaseUrl } from "../store/postgres-support.js";
import { CuttingProxy } from "../support/cutting-proxy.js";
import { freshSchemaName } from "../support/store-target.js";

const key = { orgId: "org_1", machineName: "m", instanceName: "i" };

describe("change notices", () => {
  test("what payloads() packs, decode() reads back", () => {
    const changes: Change[] = [
      { kind: "state", key, sequence: 7 },
      { kind: "state", key, sequence: 8, timersDueAt: 1_700_000_000_000 },
      { kind: "deleted", key },
      { kind: "deleted", key, instanceId: 12 },
      { kind: "paused", key, sequence: 9 },
      { kind: "paused", key, sequence: 9, instanceId: 12 },
      { kind: "unknown" },
      { kind: "unknown", timersDueAt: 5 },
    ];
    const [payload, ...more] = payloads("node_a", changes.map(encodeChange));
    assert.deepEqual(more, []);
    assert.deepEqual(decode(payload!), { origin: "node_a", changes });
    // A delete names its row in a fifth field, a pause in a sixth: a server that knows none of
    // them skips them.
    const deleted = encodeChange({ kind: "deleted", key, instanceId: 12 });
    assert.equal(deleted, '["d","org_1","m","i",12]');
    const paused = encodeChange({ kind: "paused", key, sequence: 9, instanceId: 12 });
    assert.equal(paused, '["p","org_1","m","i",9,12]');
    const junks = ["", "{}", '["a"]', '["a",["s","o","m","i","x"]]', '["a",["p","o","m","i"]]'];
    for (const junk of [...junks, '["a",["z"]]', "[1,2]"]) {
      assert.equal(decode(junk), undefined, junk);
    }
  });

  test("many changes are split over payloads that each fit in a NOTIFY", () => {
    const many = Array.from({ length: 500 }, (_, i) =>
      encodeChange({ kind: "state", key: { ...key, instanceName: `instance-${i}` }, sequence: i }),
    );
    const packed = payloads("node_a", many);
    assert.ok(packed.length > 1);
    assert.ok(packed.every((payload) => Buffer.byteLength(payload) <= MAX_PAYLOAD_BYTES));
    const decoded = packed.flatMap((payload) => decode(payload)!.changes);
    assert.deepEqual(
      decoded.map((change) => (change.kind === "state" ? change.sequence : -1)),
      many.map((_, i) => i),
    );
  });

  test("a change too large for NOTIFY becomes an unknown change, keeping its timer", () => {
    const big = { ...key, instanceName: "x".repeat(9000) };
    const text = encodeChange({ kind: "state", key: big, sequence: 1, timersDueAt: 9 });
    const [payload] = payloads("n", [text]);
    assert.ok(Buffer.byteLength(payload!) < 8000);
    assert.deepEqual(decode(payload!), {
      origin: "n",
      changes: [{ kind: "unknown", timersDueAt: 9 }],
    });
  });

  test("each schema has a channel of its own, always a valid identifier", () => {
    assert.equal(channelOf(undefined), "backstate_updates");
    assert.equal(channelOf("tenant_a"), "backstate_updates_tenant_a");
    const long = channelOf("s".repeat(60));
    assert.ok(long.length <= 63 && /^[a-z0-9_]+$/.test(long));
    assert.notEqual(long, channelOf(`${"s".repeat(59)}t`));
    assert.throws(() => channelOf("Bad-Name"), TypeError);
  });
});

const url = testDatabaseUrl("postgres update bus");

if (url !== undefined) {
  const buses: PostgresUpdateBus[] = [];
  after(() => Promise.all(buses.map((bus) => bus.close())));

  async function openBus(
    schema: string,
    nodeId: string,
    connectionString = url!,
    logger: Logger = silentLogger,
  ) {
    const bus = new PostgresUpdateBus({
      connectionString,
      schema,
      nodeId,
      logger,
      reconnectDelayMs: 20,
    });
    buses.push(bus);
    await bus.start();
    const seen: BusUpdate[] = [];
    bus.subscribe((update) => seen.push(update));
    return { bus, seen };
  }

  async function notify(channel: string, ...payloads: string[]): Promise<void> {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      for (const payload of payloads) {
        await client.query("SELECT pg_notify($1, $2)", [channel, payload]);
      }
    } finally {
      await client.end();
    }
  }

  async function waitFor(condition: () => boolean, what: string, timeoutMs = 5000) {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(10);
    }
  }

  describe("postgres update bus", () => {
    test("other nodes' notices arrive as updates; a node's own are skipped", async () => {
      const schema = freshSchemaName();
      const a = await openBus(schema, "node_a");
      const b = await openBus(schema, "node_b");
      const other = await openBus(freshSchemaName(), "node_c");
      const notice = (origin: string, ...changes: Change[]) =>
        payloads(origin, changes.map(encodeChange))[0]!;
      await notify(
        channelOf(schema),
        notice(
          "node_a",
          { kind: "state", key, sequence: 1, timersDueAt: 42 },
          { kind: "deleted", key, instanceId: 2 },
          { kind: "paused", key, sequence: 3, instanceId: 2 },
        ),
        "not a notice",
        notice("node_b", { kind: "unknown" }),
      );
      await waitFor(() => b.seen.length === 4 && a.seen.length === 1, "the notices");
      assert.deepEqual(b.seen, [
        { kind: "changed", key, sequence: 1 },
        { kind: "timers-armed", dueAt: 42 },
        { kind: "deleted", key, instanceId: 2 },
        { kind: "paused", key, sequence: 3, instanceId: 2 },
      ]);
      assert.deepEqual(a.seen, [{ kind: "resync" }]);
      // Published updates reach the publishing node's own subscribers, directly.
      a.bus.publish({ kind: "deleted", key });
      assert.deepEqual(a.seen[1], { kind: "deleted", key });
      // A window for a stray notice: no event marks that none will come (the earlier waitFor
      // already gave the commits' notices time to reach it). Too short, it sees less; it cannot
      // fail the test.
      await sleep(50);
      assert.deepEqual(other.seen, [], "another schema's cluster hears nothing");
    });

    test("a node skips its own notices unread", async () => {
      const schema = freshSchemaName();
      const warned = (into: string[]): Logger => ({
        ...silentLogger,
        warn: (message) => into.push(message),
      });
      const aWarnings: string[] = [];
      const bWarnings: string[] = [];
      const a = await openBus(schema, "node_a", url, warned(aWarnings));
      const b = await openBus(schema, "node_b", url, warned(bWarnings));
      // node_a's origin, then a change no server understands: node_b reads it and warns; node_a
      // never reads past its own name. A well-formed one of node_a's reaches node_b alone.
      const [own] = payloads("node_a", [encodeChange({ kind: "deleted", key })]);
      await notify(channelOf(schema), '["node_a",["z"]]', own!);
      await waitFor(() => b.seen.length === 1 && bWarnings.length === 1, "node_b's reading");
      assert.deepEqual(b.seen, [{ kind: "deleted", key }]);
      // Both notices were delivered to node_a before the one after them, which it does read.
      await notify(
        channelOf(schema),
        payloads("node_b", [encodeChange({ kind: "deleted", key })])[0]!,
      );
      await waitFor(() => a.seen.length === 1, "node_b's notice at node_a");
      assert.deepEqual(aWarnings, []);
      // Ids that node_a's own opens the way of, or that differ only in escaping, are others':
      // node_a reads them all. (One that is node_a's id written with an escape is read, then
      // dropped as its own.)
      const others = ["node_a_2", 'node_a"', "node_a\\", "node_a\u00e9", "node_\u00e1"];
      await notify(
        channelOf(schema),
        ...others.map((id) => payloads(id, [encodeChange({ kind: "deleted", key })])[0]!),
        '["\\u006eode_a",["d","org_1","m","i"]]',
      );
      await waitFor(() => a.seen.length === 1 + others.length, "the others' notices at node_a");
      await notify(channelOf(schema), payloads("node_b", [encodeChange({ kind: "unknown" })])[0]!);
      await waitFor(() => a.seen.length === 2 + others.length, "a last notice at node_a");
      assert.deepEqual(a.seen.at(-1), { kind: "resync" });
      assert.deepEqual(aWarnings, []);
    });

    test("a cut listening connection is replaced, and subscribers are told to resync", async () => {
      const schema = freshSchemaName();
      const a = await openBus(schema, "node_a");
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      try {
        const cut = await admin.query(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
           WHERE application_name = 'backstate-listener node_a' AND query LIKE $1`,
          [`%${channelOf(schema)}%`],
        );
        assert.equal(cut.rowCount, 1);
      } finally {
        await admin.end();
      }
      await waitFor(() => a.seen.some((u) => u.kind === "resync"), "the resync");
      assert.ok(a.bus.listening);
      await notify(
        channelOf(schema),
        payloads("node_b", [encodeChange({ kind: "deleted", key })])[0]!,
      );
      await waitFor(() => a.seen.some((u) => u.kind === "deleted"), "a notice after reconnecting");
    });

    test("a bus that cannot get its connection back says since when, until it is back", async (t) => {
      const target = new URL(url);
      const proxy = await CuttingProxy.start({
        host: target.hostname,
        port: Number(target.port || 5432),
      });
      t.after(() => proxy.close());
      const a = await openBus(freshSchemaName(), "node_a", proxy.urlFor(url));
      assert.equal(a.bus.notListeningSince(), undefined);

      // The database goes away: the connection breaks and every reconnect is refused.
      const before = performance.now();
      proxy.goDown();
      await waitFor(() => a.bus.notListeningSince() !== undefined, "the connection's loss");
      const since = a.bus.notListeningSince()!;
      assert.ok(since >= before && since <= performance.now());
      // Failed attempts do not move the time it was lost: the outage is as long as it is.
      await sleep(300);
      assert.equal(a.bus.notListeningSince(), since);

      proxy.comeUp();
      await waitFor(() => a.bus.notListeningSince() === undefined, "the connection back");
      assert.ok(a.bus.listening);
    });
  });
}
