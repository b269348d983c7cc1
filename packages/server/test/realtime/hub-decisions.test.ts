// The hub's use of allowRead decisions, with a fake engine and fake sockets: decisions asked with
// a step are used as they are (no separate read), decisions that had to be asked separately may
// arrive after a newer state's, and then the newer one stands. And the watchers' bookkeeping.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type WebSocket from "ws";
import type { Authenticator } from "../../src/auth/authenticator.js";
import type { Principal } from "../../src/auth/principal.js";
import { BackstateError, NotFoundError } from "../../src/errors.js";
import type { Engine, InstanceUpdate } from "../../src/engine/engine.js";
import type { InstanceState } from "../../src/engine/instance-state.js";
import { silentLogger } from "../../src/engine/logger.js";
import type { ReadAudience } from "../../src/engine/read-audience.js";
import { Connection } from "../../src/realtime/connection.js";
import { RealtimeHub } from "../../src/realtime/hub.js";
import { InstanceWatchers } from "../../src/realtime/instance-watchers.js";
import type { BusUpdate, UpdateBus } from "../../src/realtime/update-bus.js";
import type { InstanceRecord, Store } from "../../src/store/store.js";

const ORG = "org_hub";
const names = { orgId: ORG, machineName: "m", instanceName: "i" };
const stateAt = (ts: number): InstanceState => ({ state: `s${ts}`, tags: [], done: false, ts });
const record = { ...names, id: 1 } as InstanceRecord;

type Deferred = { resolve: (allowed: boolean) => void; reject: (error: Error) => void };

function fakeSocket() {
  const sent: Array<Record<string, unknown>> = [];
  const socket = {
    OPEN: 1,
    readyState: 1,
    bufferedAmount: 0,
    send: (frame: string) => sent.push(JSON.parse(frame) as Record<string, unknown>),
    close: () => {},
  };
  return { socket: socket as unknown as WebSocket, sent };
}

function principal(sub: string): Principal {
  return {
    caller: {
      kind: "key",
      key: { id: "k", orgId: ORG } as never,
      claims: { sub },
      expiresAt: Date.now() / 1000 + 3600,
    },
    orgId: ORG,
    scopes: new Set(["state.read"]),
    authContext: { sub },
  };
}

function setUp() {
  let listener!: (update: InstanceUpdate) => void;
  let audience!: ReadAudience;
  const reads: Deferred[] = [];
  const engine = {
    onInstanceUpdate: (l: (update: InstanceUpdate) => void) => ((listener = l), () => {}),
    watchReaders: (a: ReadAudience) => (audience = a),
    readInstanceRow: () => Promise.resolve({ instanceId: 1, state: stateAt(1) }),
    canRead: () => new Promise<boolean>((resolve, reject) => reads.push({ resolve, reject })),
    stateOf: () => stateAt(1),
  } as unknown as Engine;
  const hub = new RealtimeHub({
    engine,
    store: {} as Store,
    authenticator: {
      stillValid: () => Promise.resolve(true),
      checkExpiry: () => {},
    } as unknown as Authenticator,
    logger: silentLogger,
    tokenGraceSeconds: 0,
  });
  const connect = async (sub: string) => {
    const { socket, sent } = fakeSocket();
    const connection = new Connection(socket, principal(sub), {
      maxSubscriptions: 10,
      highWaterBytes: 1 << 20,
    });
    await hub.subscribe(connection, {
      type: "subscribe-to-instance",
      requestId: "r",
      machineName: "m",
      machineInstanceName: "i",
    });
    return { connection, sent };
  };
  const commit = (ts: number, decisions?: Record<string, boolean>) =>
    listener({
      kind: "state",
      instance: record,
      state: stateAt(ts),
      ...(decisions ? { reads: new Map(Object.entries(decisions)) } : {}),
    });
  return { hub, engine, connect, commit, reads, audience: () => audience };
}

const kinds = (sent: Array<Record<string, unknown>>) =>
  sent.map((m) => (m.type === "error" ? `error:${String(m.code)}` : `ts:${String(m.ts)}`));
const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("the hub's allowRead decisions", () => {
  test("a decision asked with the step is used as it is: no separate read", async () => {
    const { connect, commit, reads } = setUp();
    const alice = await connect("alice");
    commit(2, { [alice.connection.authKey]: true });
    commit(3, { [alice.connection.authKey]: false });
    assert.equal(reads.length, 0);
    assert.deepEqual(kinds(alice.sent), ["ts:1", "ts:2", "error:rejected-by-machine-authorizer"]);
  });

  test("a watcher with no decision from the step is asked separately", async () => {
    const { connect, commit, reads } = setUp();
    const alice = await connect("alice");
    commit(2, { '{"sub":"someone else"}': true });
    assert.equal(reads.length, 1);
    reads[0]!.resolve(true);
    await tick();
    assert.deepEqual(kinds(alice.sent), ["ts:1", "ts:2"]);
  });

  test("a separate refusal that comes after a newer state was shown ends nothing", async () => {
    const { connect, commit, reads } = setUp();
    const alice = await connect("alice");
    commit(2);
    commit(3, { [alice.connection.authKey]: true });
    reads[0]!.resolve(false);
    await tick();
    assert.deepEqual(kinds(alice.sent), ["ts:1", "ts:3"]);
    commit(4, { [alice.connection.authKey]: true });
    assert.deepEqual(kinds(alice.sent), ["ts:1", "ts:3", "ts:4"], "still subscribed");
  });

  test("a separate approval that comes after a newer state ended the subscription shows nothing", async () => {
    const { connect, commit, reads } = setUp();
    const alice = await connect("alice");
    commit(2);
    commit(3, { [alice.connection.authKey]: false });
    reads[0]!.resolve(true);
    await tick();
    assert.deepEqual(kinds(alice.sent), ["ts:1", "error:rejected-by-machine-authorizer"]);
  });

  test("a separate read that could not be made ends the subscription with its own error, not a refusal", async () => {
    const { connect, commit, reads } = setUp();
    const alice = await connect("alice");
    commit(2);
    reads[0]!.reject(new BackstateError("sandbox-crashed", "the sandbox process exited"));
    await tick();
    assert.deepEqual(kinds(alice.sent), ["ts:1", "error:sandbox-crashed"]);
    assert.equal(alice.sent[1]?.status, 503);
    commit(3, { [alice.connection.authKey]: true });
    assert.deepEqual(kinds(alice.sent), ["ts:1", "error:sandbox-crashed"], "no longer subscribed");
  });

  test("the engine is told each instance's distinct readers, up to the limit, until the hub closes", async () => {
    const { hub, connect, audience } = setUp();
    await connect("alice");
    await connect("alice");
    await connect("bob");
    assert.deepEqual(
      audience()(names, 8).map((r) => r.authContext),
      [{ sub: "alice" }, { sub: "bob" }],
    );
    assert.equal(audience()(names, 1).length, 1);
    assert.deepEqual(audience()({ ...names, instanceName: "other" }, 8), []);
    hub.close();
    assert.deepEqual(audience()(names, 8), []);
  });
});

describe("subscriptions being admitted (the checks read the store)", () => {
  const subscribe = (requestId: string, machineInstanceName = "i") =>
    ({ type: "subscribe-to-instance", requestId, machineName: "m", machineInstanceName }) as const;
  const socketOf = (maxSubscriptions = 10) => {
    const { socket, sent } = fakeSocket();
    const connection = new Connection(socket, principal("alice"), {
      maxSubscriptions,
      highWaterBytes: 1 << 20,
    });
    return { connection, sent };
  };

  test("an unsubscribe sent right behind its subscribe leaves nothing subscribed", async () => {
    const { hub, commit } = setUp();
    const { connection, sent } = socketOf();
    // As realtime-server.ts handles two frames that came in one read: one after the other.
    const subscribing = hub.subscribe(connection, subscribe("r"));
    hub.unsubscribe(connection, "r");
    await subscribing;
    commit(2, { [connection.authKey]: true });
    assert.equal(connection.subscriptions.size, 0);
    assert.equal(hub.watchedInstances, 0);
    assert.deepEqual(sent, []);
  });

  test("a socket closed while its subscribe is admitted leaves no watcher behind", async () => {
    const { hub } = setUp();
    const { connection, sent } = socketOf();
    const subscribing = hub.subscribe(connection, subscribe("r"));
    hub.disconnect(connection);
    await subscribing;
    assert.equal(hub.watchedInstances, 0);
    assert.deepEqual(sent, []);
  });

  test("of two subscribes with one request id back to back, the later stands", async () => {
    const { hub } = setUp();
    const { connection, sent } = socketOf();
    await Promise.all([
      hub.subscribe(connection, subscribe("r", "first")),
      hub.subscribe(connection, subscribe("r", "second")),
    ]);
    assert.deepEqual(
      [...connection.subscriptions.values()].map((sub) => sub.instanceName),
      ["second"],
    );
    assert.deepEqual(
      sent.map((frame) => frame.machineInstanceName),
      ["second"],
    );
    assert.equal(hub.watchedInstances, 1);
  });

  test("a live subscription's subscribe repeated behind a newer one with its id: the repeat stands", async () => {
    const { hub } = setUp();
    const { connection, sent } = socketOf();
    await hub.subscribe(connection, subscribe("r", "first"));
    await Promise.all([
      hub.subscribe(connection, subscribe("r", "second")),
      hub.subscribe(connection, subscribe("r", "first")),
    ]);
    assert.deepEqual(
      [...connection.subscriptions.values()].map((sub) => sub.instanceName),
      ["first"],
    );
    assert.deepEqual(
      sent.map((frame) => frame.machineInstanceName),
      ["first", "first"],
    );
    assert.equal(hub.watchedInstances, 1);
  });

  test("a read that fails after its subscription was replaced answers nothing", async () => {
    const { hub, engine } = setUp();
    let failRead!: (err: unknown) => void;
    engine.readInstanceRow = ({ instanceName }: { instanceName: string }) =>
      instanceName === "missing"
        ? new Promise((_, reject) => (failRead = reject))
        : Promise.resolve({ instanceId: 1, state: stateAt(1) });
    const { connection, sent } = socketOf();
    const first = hub.subscribe(connection, subscribe("r", "missing"));
    await tick();
    // The request id now names a subscription to "i", which is live and has had its state.
    await hub.subscribe(connection, subscribe("r", "i"));
    failRead(new NotFoundError("no such instance"));
    await first;
    assert.deepEqual(kinds(sent), ["ts:1"], "no error for the live subscription");
    assert.equal(connection.subscriptions.get("r")?.instanceName, "i");
  });

  test("subscribes sent at once get the places in the order they came, no more", async () => {
    const { hub } = setUp();
    const { connection, sent } = socketOf(2);
    await Promise.all(
      ["a", "b", "c", "d", "e"].map((id) => hub.subscribe(connection, subscribe(id, id))),
    );
    // The first two got the places, in the order they came; the other three were refused.
    assert.deepEqual([...connection.subscriptions.keys()].sort(), ["a", "b"]);
    const refused = sent.filter((frame) => frame.type === "error");
    assert.deepEqual(
      refused.map((frame) => [frame.requestId, frame.code]),
      [
        ["c", "invalid-parameter"],
        ["d", "invalid-parameter"],
        ["e", "invalid-parameter"],
      ],
    );
  });
});

describe("other nodes' updates (loaded from the store)", () => {
  type Row = { instanceId: number; ts: number };

  /**
   * A hub on a bus of other nodes' notices (`emit`), over a store answering `loadInstance`, with
   * one socket subscribed (request id "r") to the instance as a subscribe reads it: as
   * `subscribedTo` (its row and ts), or what `readRow` answers, when given.
   */
  async function subscribedOnBus(options: {
    loadInstance: () => Promise<InstanceRecord | undefined>;
    subscribedTo: Row;
    stateOf: (instance: InstanceRecord) => InstanceState;
    readRow?: () => Promise<Row>;
    canRead?: () => Promise<boolean>;
  }) {
    const readRow = options.readRow ?? (() => Promise.resolve(options.subscribedTo));
    const engine = {
      watchReaders: () => {},
      readInstanceRow: async () => {
        const { instanceId, ts } = await readRow();
        return { instanceId, state: stateAt(ts) };
      },
      canRead: options.canRead ?? (() => Promise.resolve(true)),
      stateOf: options.stateOf,
    } as unknown as Engine;
    let emit!: (update: BusUpdate) => void;
    const updates = {
      subscribe: (listener: (update: BusUpdate) => void) => ((emit = listener), () => {}),
    } as unknown as UpdateBus;
    const hub = new RealtimeHub({
      engine,
      store: { loadInstance: options.loadInstance } as unknown as Store,
      authenticator: {
        stillValid: () => Promise.resolve(true),
        checkExpiry: () => {},
      } as unknown as Authenticator,
      logger: silentLogger,
      tokenGraceSeconds: 0,
      updates,
    });
    const { socket, sent } = fakeSocket();
    const connection = new Connection(socket, principal("alice"), {
      maxSubscriptions: 10,
      highWaterBytes: 1 << 20,
    });
    const subscribe = (requestId: string) =>
      hub.subscribe(connection, {
        type: "subscribe-to-instance",
        requestId,
        machineName: "m",
        machineInstanceName: "i",
      });
    const subscribed = subscribe("r");
    // Admitted and watching: the read of its first state may still be under way.
    await sleep(0);
    const close = () => {
      hub.disconnect(connection);
      hub.close();
    };
    return { emit, sent, connection, close, subscribe, subscribed };
  }

  async function until(done: () => boolean): Promise<void> {
    const deadline = Date.now() + 5000;
    while (!done() && Date.now() < deadline) await sleep(20);
  }

  test("a load that fails is tried again: the other node's change still arrives", async () => {
    let loads = 0;
    const { emit, sent, close, subscribed } = await subscribedOnBus({
      loadInstance: () =>
        ++loads === 1
          ? Promise.reject(new Error("the store is briefly away"))
          : Promise.resolve(record),
      subscribedTo: { instanceId: 1, ts: 1 },
      stateOf: () => stateAt(2),
    });
    try {
      await subscribed;
      // Another node committed ts 2; the first load of it fails. It used to be dropped there,
      // leaving the subscriber at ts 1 until the instance changed again, maybe never.
      emit({ kind: "changed", key: names, sequence: 2 });
      await until(() => sent.length >= 2);
      assert.deepEqual(kinds(sent), ["ts:1", "ts:2"]);
    } finally {
      close();
    }
  });

  test("a late notice of an older row's delete ends no subscription to the row made since", async () => {
    // Row 1 was deleted and row 2 made under its name; the socket subscribed to row 2.
    const row2 = { ...names, id: 2 } as InstanceRecord;
    const { emit, sent, connection, close, subscribed } = await subscribedOnBus({
      loadInstance: () => Promise.resolve(row2),
      subscribedTo: { instanceId: 2, ts: 10 },
      stateOf: () => stateAt(10),
    });
    try {
      await subscribed;
      emit({ kind: "deleted", key: names, instanceId: 1 });
      await sleep(50);
      assert.deepEqual(kinds(sent), ["ts:10"]);
      assert.equal(connection.subscriptions.size, 1, "still subscribed");
    } finally {
      close();
    }
  });

  test("another node's delete of the row a socket watches ends its subscription (404)", async () => {
    const { emit, sent, connection, close, subscribed } = await subscribedOnBus({
      loadInstance: () => Promise.resolve(undefined),
      subscribedTo: { instanceId: 1, ts: 1 },
      stateOf: () => stateAt(1),
    });
    try {
      await subscribed;
      emit({ kind: "deleted", key: names, instanceId: 1 });
      await until(() => sent.length >= 2);
      assert.deepEqual(kinds(sent), ["ts:1", "error:not-found"]);
      assert.equal(connection.subscriptions.size, 0);
    } finally {
      close();
    }
  });

  test("a row made since under the name, found on a reload, ends the old row's subscription", async () => {
    // The delete's notice was missed (the bus reconnected): the reload finds row 2, whose ts is
    // even below what the socket was shown of row 1 (another node's clock is behind).
    const row2 = { ...names, id: 2 } as InstanceRecord;
    const { emit, sent, connection, close, subscribed } = await subscribedOnBus({
      loadInstance: () => Promise.resolve(row2),
      subscribedTo: { instanceId: 1, ts: 50 },
      stateOf: () => stateAt(5),
    });
    try {
      await subscribed;
      emit({ kind: "resync" });
      await until(() => sent.length >= 2);
      assert.deepEqual(kinds(sent), ["ts:50", "error:not-found"]);
      assert.equal(connection.subscriptions.size, 0);
    } finally {
      close();
    }
  });

  test("a socket's second subscription to a name that reads a newer row ends the first (404)", async () => {
    // Row 1 was deleted and row 2 made under its name; the delete's notice has not come yet.
    const rows = [
      { instanceId: 1, ts: 50 },
      { instanceId: 2, ts: 5 },
    ];
    const { sent, connection, close, subscribe, subscribed } = await subscribedOnBus({
      loadInstance: () => Promise.resolve({ ...names, id: 2 } as InstanceRecord),
      subscribedTo: rows[0]!,
      stateOf: () => stateAt(5),
      readRow: () => Promise.resolve(rows.shift()!),
    });
    try {
      await subscribed;
      await subscribe("r2");
      assert.deepEqual(kinds(sent), ["ts:50", "error:not-found", "ts:5"]);
      assert.deepEqual([...connection.subscriptions.keys()], ["r2"]);
      assert.equal(sent[1]?.requestId, "r");
    } finally {
      close();
    }
  });

  test("a newer row whose read decision comes after a subscribe showed an older one ends it", async () => {
    // The subscribe's read is slow and finds row 1; meanwhile a reload finds row 2 (row 1 was
    // deleted), whose allowRead decision comes only after that read has been shown.
    let answerRead!: (row: Row) => void;
    let answerCanRead!: (allowed: boolean) => void;
    const { emit, sent, connection, close, subscribed } = await subscribedOnBus({
      loadInstance: () => Promise.resolve({ ...names, id: 2 } as InstanceRecord),
      subscribedTo: { instanceId: 1, ts: 50 },
      stateOf: () => stateAt(5),
      readRow: () => new Promise((resolve) => (answerRead = resolve)),
      canRead: () => new Promise((resolve) => (answerCanRead = resolve)),
    });
    try {
      emit({ kind: "changed", key: names, sequence: 1 });
      await until(() => answerCanRead !== undefined);
      answerRead({ instanceId: 1, ts: 50 });
      await subscribed;
      answerCanRead(true);
      await until(() => sent.length >= 2);
      assert.deepEqual(kinds(sent), ["ts:50", "error:not-found"]);
      assert.equal(connection.subscriptions.size, 0);
    } finally {
      close();
    }
  });
});

describe("Connection: what a socket was shown of an instance name", () => {
  test("a later row is newer whatever its ts; within a row, a later ts is", () => {
    const { socket, sent } = fakeSocket();
    const connection = new Connection(socket, principal("alice"), {
      maxSubscriptions: 10,
      highWaterBytes: 1 << 20,
    });
    const frame = (ts: number) => JSON.stringify({ type: "instance-update", ts });
    connection.sendCurrentState("ref", 1, 50, frame(50));
    connection.sendUpdate("ref", 1, 40, frame(40));
    connection.sendUpdate("ref", 2, 5, frame(5));
    connection.sendUpdate("ref", 1, 60, frame(60));
    connection.sendUpdate("ref", 2, 6, frame(6));
    // A first state read of the older row, arriving late, gives way to the newer one shown.
    connection.sendCurrentState("ref", 1, 70, frame(70));
    assert.deepEqual(kinds(sent), ["ts:50", "ts:5", "ts:6", "ts:6"]);
    assert.equal(connection.rowShown("ref"), 2);
  });
});

describe("InstanceWatchers", () => {
  const connection = (sub: string) =>
    new Connection(fakeSocket().socket, principal(sub), {
      maxSubscriptions: 10,
      highWaterBytes: 1,
    });

  test("counts sockets per reader: a reader goes when its last socket does", () => {
    const watchers = new InstanceWatchers();
    const [a1, a2, b] = [connection("a"), connection("a"), connection("b")];
    for (const c of [a1, a2, b, a1]) watchers.add(c);
    assert.equal(watchers.size, 3);
    const subs = () => watchers.readers(8).map((r) => r.authContext.sub);
    assert.deepEqual(subs(), ["a", "b"]);
    watchers.delete(a1);
    watchers.delete(a1);
    assert.deepEqual(subs(), ["a", "b"], "a's other socket still watches");
    watchers.delete(a2);
    assert.deepEqual(subs(), ["b"]);
    watchers.delete(b);
    assert.equal(watchers.size, 0);
    assert.deepEqual(subs(), []);
  });
});
