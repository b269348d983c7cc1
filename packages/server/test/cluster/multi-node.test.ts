// Three server processes on one PostgreSQL schema, driven over HTTP like a load balancer would:
// - clients send concurrent events to the same instances through different nodes, and every
//   instance's history is checked for linearizability: each acknowledged event present exactly
//   once, none twice, and an order consistent with real time (an event acknowledged before another
//   was sent comes first); each acknowledged response shows exactly the history up to its event;
// - timers armed through one node fire exactly once;
// - a subscriber on node A sees what is sent through node B;
// - one node is SIGKILLed mid-load: no acknowledged event is lost, and the timers armed through
//   it (some due before, some around, some after its death) still fire, exactly once.
import assert from "node:assert/strict";
import { performance } from "node:perf_hooks";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { signToken } from "@backstate/token";
import { ensureBootstrapAdmin, mintAdminSession } from "../../src/auth/admin-sessions.js";
import { systemClock } from "../../src/engine/clock.js";
import { randomIds } from "../../src/engine/ids.js";
import { openPostgresStore, type PostgresStore } from "../../src/store/postgres/index.js";
import type { InstanceKey } from "../../src/store/store.js";
import { openSocket, rtUrl, type Message } from "../realtime/raw-socket.js";
import { testDatabaseUrl } from "../store/postgres-support.js";
import type { ApiResponse } from "../support/api-server.js";
import { startClusterNode, type ClusterNode } from "../support/cluster-node.js";
import { dropSchema, freshSchemaName } from "../support/store-target.js";
import { officialClient } from "../support/official-client.js";

// Appends each "add" event's id to its context; "arm" starts a timer that counts a tick.
const LOG_MACHINE = `
import { createMachine, assign } from "xstate";
export default createMachine({
  id: "log",
  initial: "idle",
  context: { public: { ids: [], ticks: 0 } },
  states: {
    idle: { on: { add: { actions: "add" }, arm: "armed" } },
    armed: {
      on: { add: { actions: "add" } },
      after: { delay: { target: "idle", actions: "tick" } },
    },
  },
}, {
  actions: {
    add: assign({ public: ({ context, event }) => ({ ...context.public, ids: [...context.public.ids, event.id] }) }),
    tick: assign({ public: ({ context }) => ({ ...context.public, ticks: context.public.ticks + 1 }) }),
  },
  delays: { delay: ({ context }) => context.public.delayMs ?? 300 },
});
export const allowRead = () => true;
export const allowWrite = () => true;
`;

const LEASE_MS = 1_000;
const LOAD_MS = 5_000;
const KILL_AT_MS = 2_000;
const LOAD_INSTANCES = 8;
const WORKERS_PER_NODE = 6;

const url = testDatabaseUrl("multi-node cluster");

if (url !== undefined) {
  const schema = freshSchemaName();
  const nodes: ClusterNode[] = [];
  let store: PostgresStore;
  let orgId: string;
  let token: string;

  before(async () => {
    nodes.push(
      ...(await Promise.all(
        ["a", "b", "c"].map((name) =>
          startClusterNode({
            databaseUrl: url,
            postgres: { schema, poolSize: 6 },
            nodeId: `node_${name}`,
            timerLeaseMs: LEASE_MS,
            timerRetryDelayMs: 200,
            sandboxes: { size: 1 },
          }),
        ),
      )),
    );
    store = openPostgresStore({ connectionString: url, schema, poolSize: 2 });
    await store.migrate();
    const bootstrap = await ensureBootstrapAdmin(store, randomIds, systemClock);
    orgId = bootstrap.orgId;
    const session = await mintAdminSession(store, randomIds, systemClock, bootstrap.userId);
    const admin = officialClient(nodes[0]!.url, session.token, { orgId });
    await admin.machines.create("log");
    await admin.machineVersions.create("log", { code: LOG_MACHINE, makeCurrent: true });
    const key = await admin.keys.create({ name: "cluster", use: "production" });
    token = await signToken(
      { stateBackedKeyId: key.id, stateBackedSecretKey: key.key },
      { sub: "tester" },
      { expires: { in: "1h" } },
    );
  });

  after(async () => {
    await Promise.all(nodes.map((node) => node.close()));
    await store?.close();
    await dropSchema(url, schema);
  });

  async function call(
    node: ClusterNode,
    method: string,
    path: string,
    body?: unknown,
  ): Promise<ApiResponse> {
    const response = await fetch(node.url + path, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined };
  }

  async function create(node: ClusterNode, name: string, context: object = {}) {
    const reply = await call(node, "POST", "/machines/log", { slug: name, context });
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
  }

  async function send(node: ClusterNode, name: string, event: object): Promise<void> {
    const reply = await call(node, "POST", `/machines/log/i/${name}/events`, { event });
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
  }

  const keyOf = (instanceName: string): InstanceKey => ({
    orgId,
    machineName: "log",
    instanceName,
  });

  async function historyOf(name: string) {
    const rows = await store.listTransitions(keyOf(name), { limit: 100_000 });
    assert.deepEqual(
      rows.map((row) => row.sequence),
      rows.map((_, i) => i + 1),
      `${name}: one gapless history`,
    );
    return rows.map((row) => JSON.parse(row.event) as { type: string; id?: string });
  }

  /** Waits until each timer instance has ticked once; then checks it ticked exactly once. */
  async function checkTimersFiredOnce(names: string[], timeoutMs: number) {
    const deadline = Date.now() + timeoutMs;
    for (const name of names) {
      for (;;) {
        const state = (await call(nodes[0]!, "GET", `/machines/log/i/${name}`)).body;
        if (state.publicContext.ticks >= 1) break;
        if (Date.now() > deadline) assert.fail(`${name}'s timer never fired`);
        await sleep(50);
      }
    }
    // Past any lease a second claimer could have waited out: still exactly one firing.
    await sleep(LEASE_MS + 300);
    for (const name of names) {
      const state = (await call(nodes[0]!, "GET", `/machines/log/i/${name}`)).body;
      assert.equal(state.publicContext.ticks, 1, `${name} ticked once`);
      assert.equal(state.state, "idle");
      const fired = (await historyOf(name)).filter((event) =>
        event.type.startsWith("xstate.after"),
      );
      assert.equal(fired.length, 1, `${name}: one timer transition`);
    }
  }

  describe("a cluster of three nodes on one database", () => {
    test("a subscriber on node A sees the events sent through node B", async () => {
      const [a, b] = nodes as [ClusterNode, ClusterNode];
      await create(b, "watched");
      const socket = await openSocket(rtUrl(a.url, token));
      try {
        socket.send({
          type: "subscribe-to-instance",
          requestId: "r",
          machineName: "log",
          machineInstanceName: "watched",
        });
        const ids = (m: Message) => (m.publicContext as { ids: string[] }).ids;
        await socket.next((m) => m.type === "instance-update" && ids(m).length === 0);
        for (let i = 0; i < 5; i++) await send(b, "watched", { type: "add", id: `w${i}` });
        const last = await socket.next((m) => m.type === "instance-update" && ids(m).length === 5);
        assert.deepEqual(ids(last), ["w0", "w1", "w2", "w3", "w4"]);
      } finally {
        await socket.close();
      }
    });

    test("timers armed through one node fire exactly once", async () => {
      const b = nodes[1]!;
      const names = Array.from({ length: 6 }, (_, i) => `timer${i}`);
      await Promise.all(names.map((name) => create(b, name)));
      await Promise.all(names.map((name) => send(b, name, { type: "arm" })));
      await checkTimersFiredOnce(names, 10_000);
    });

    test("concurrent events through every node, one node SIGKILLed: linearizable histories", async () => {
      const [a, , c] = nodes as [ClusterNode, ClusterNode, ClusterNode];
      const instances = Array.from({ length: LOAD_INSTANCES }, (_, i) => `load${i}`);
      await Promise.all(instances.map((name) => create(a, name)));
      // Timers armed through the node that will die: due before, around and after its death
      // (their delays spread over the load, from when they are armed).
      const doomedTimers = Array.from({ length: 8 }, (_, i) => `doomed${i}`);
      await Promise.all(
        doomedTimers.map((name, i) =>
          create(c, name, { public: { ids: [], ticks: 0, delayMs: 1000 + 250 * i } }),
        ),
      );

      // A subscriber on A follows one loaded instance to the end.
      const socket = await openSocket(rtUrl(a.url, token));
      socket.send({
        type: "subscribe-to-instance",
        requestId: "r",
        machineName: "log",
        machineInstanceName: instances[0],
      });

      type Sent = {
        id: string;
        node: ClusterNode;
        instance: string;
        start: number;
        end: number | undefined;
        ok: boolean;
        ids?: string[];
        outcome: string;
      };
      const sent: Sent[] = [];
      const origin = performance.now();
      let killedAt: number | undefined;
      let inFlightAtKill = 0;
      const live = () => nodes.filter((node) => node !== c || killedAt === undefined);

      const worker = async (home: ClusterNode, w: string) => {
        let node = home;
        for (let n = 0; performance.now() - origin < LOAD_MS; n++) {
          if (node === c && killedAt !== undefined) node = live()[n % 2]!;
          const instance = instances[Math.floor(Math.random() * instances.length)]!;
          const record: Sent = {
            id: `${w}.${n}`,
            node,
            instance,
            start: performance.now(),
            end: undefined,
            ok: false,
            outcome: "pending",
          };
          sent.push(record);
          try {
            const reply = await call(node, "POST", `/machines/log/i/${instance}/events`, {
              event: { type: "add", id: record.id },
            });
            if (reply.status === 200) {
              record.end = performance.now();
              record.ok = true;
              record.ids = reply.body.publicContext.ids;
              record.outcome = "ok";
            } else record.outcome = `${reply.status} ${reply.body?.code}`;
          } catch (error) {
            record.outcome = `failed: ${String((error as Error).cause ?? error)}`;
          }
        }
      };

      const killer = (async () => {
        await Promise.all(doomedTimers.map((name) => send(c, name, { type: "arm" })));
        const wait = KILL_AT_MS - (performance.now() - origin);
        if (wait > 0) await sleep(wait);
        killedAt = performance.now();
        inFlightAtKill = sent.filter((s) => s.node === c && s.outcome === "pending").length;
        await c.kill();
      })();

      await Promise.all([
        killer,
        ...nodes.flatMap((node, i) =>
          Array.from({ length: WORKERS_PER_NODE }, (_, w) => worker(node, `n${i}w${w}`)),
        ),
      ]);

      const acked = sent.filter((s) => s.ok);
      const outcomes = new Map<string, number>();
      for (const s of sent) {
        const kind = s.ok ? "ok" : s.outcome.split(":")[0]!;
        outcomes.set(kind, (outcomes.get(kind) ?? 0) + 1);
      }
      const cutByKill = sent.filter((s) => !s.ok && s.start < killedAt!).length;
      const servedByDoomed = sent.filter((s) => s.node === c && s.ok).length;
      console.log(
        `# load: ${sent.length} events sent, ${acked.length} acknowledged in ${LOAD_MS} ms;` +
          ` outcomes ${JSON.stringify(Object.fromEntries(outcomes))}; node C acknowledged` +
          ` ${servedByDoomed} before its SIGKILL, with ${inFlightAtKill} in flight (${cutByKill} failed)`,
      );
      assert.ok(killedAt !== undefined);
      assert.ok(servedByDoomed > 0, "the killed node was serving the load");
      assert.ok(acked.length > 200, "the cluster served the load");
      assert.ok(
        acked.length >= 0.95 * sent.length,
        `few events go unacknowledged: ${JSON.stringify(Object.fromEntries(outcomes))}`,
      );

      const byId = new Map(sent.map((s) => [s.id, s]));
      for (const instance of instances) {
        const history = await historyOf(instance);
        assert.equal(history[0]?.type, "xstate.init", `${instance} starts with its creation`);
        const ids = history.slice(1).map((event) => {
          assert.equal(event.type, "add");
          return event.id!;
        });
        // Each id once; each one sent to this instance; each acknowledged one present.
        assert.equal(new Set(ids).size, ids.length, `${instance}: no event applied twice`);
        for (const id of ids) assert.equal(byId.get(id)?.instance, instance, `${id} was sent here`);
        const position = new Map(ids.map((id, i) => [id, i]));
        for (const s of acked.filter((s) => s.instance === instance)) {
          const at = position.get(s.id);
          assert.ok(at !== undefined, `acknowledged event ${s.id} is in ${instance}'s history`);
          // The acknowledged state is the history up to (and including) this event.
          assert.deepEqual(s.ids, ids.slice(0, at + 1), `${s.id}'s response shows its prefix`);
        }
        // Real-time order: scanning from the end, the earliest acknowledgement of any later event
        // must not precede the start of this one.
        let earliestEndAfter = Infinity;
        for (let i = ids.length - 1; i >= 0; i--) {
          const s = byId.get(ids[i]!)!;
          assert.ok(
            earliestEndAfter >= s.start,
            `${instance}: ${s.id} was sent after a later event had been acknowledged`,
          );
          if (s.end !== undefined) earliestEndAfter = Math.min(earliestEndAfter, s.end);
        }
        // And the stored state agrees with the history.
        const state = (await call(a, "GET", `/machines/log/i/${instance}`)).body;
        assert.deepEqual(state.publicContext.ids, ids, `${instance}: state matches history`);
      }

      // The subscriber on A saw the final state of the instance it followed.
      try {
        const finalIds = (await historyOf(instances[0]!)).length - 1;
        await socket.next(
          (m) =>
            m.type === "instance-update" &&
            (m.publicContext as { ids: string[] }).ids.length === finalIds,
          0,
          5000,
        );
      } finally {
        await socket.close();
      }

      // The dead node's timers: lapsed leases taken over, each fired exactly once.
      await checkTimersFiredOnce(doomedTimers, 15_000);
    });
  });
}
