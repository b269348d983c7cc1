// A socket's subscribes under way are bounded by its subscription limit: each one reads the store
// (is the socket's key or session still there?), then the instance with its allowRead, and a
// subscribe that replaced one with the same request id, or came after its unsubscribe, took no
// place. A client repeating one subscribe (or subscribe and unsubscribe) as fast as it could send
// them started reads for each, all at once, and held each waiting subscribe meanwhile: as many as
// it sent while the store (or the machine's allowRead) was slow.
import assert from "node:assert/strict";
import { test } from "node:test";
import type WebSocket from "ws";
import type { Authenticator } from "../../src/auth/authenticator.js";
import type { Principal } from "../../src/auth/principal.js";
import type { Engine } from "../../src/engine/engine.js";
import { silentLogger } from "../../src/engine/logger.js";
import { Connection } from "../../src/realtime/connection.js";
import { RealtimeHub } from "../../src/realtime/hub.js";
import type { Store } from "../../src/store/store.js";

const ORG = "org_flood";

const maxSubscriptions = 10;
const subscribe = {
  type: "subscribe-to-instance",
  requestId: "r1",
  machineName: "m",
  machineInstanceName: "i",
} as const;

/** A hub and one socket's connection, with the checks and reads given. */
function socketOf(deps: {
  stillValid: () => Promise<boolean>;
  readInstanceRow?: () => Promise<unknown>;
  sent?: string[];
}): { hub: RealtimeHub; connection: Connection } {
  const authenticator = {
    checkExpiry: () => {},
    stillValid: deps.stillValid,
  } as unknown as Authenticator;
  const engine = {
    onInstanceUpdate: () => () => {},
    watchReaders: () => {},
    readInstanceRow: deps.readInstanceRow,
  } as unknown as Engine;
  const hub = new RealtimeHub({
    engine,
    store: {} as Store,
    authenticator,
    logger: silentLogger,
    tokenGraceSeconds: 0,
  });
  const socket = {
    OPEN: 1,
    readyState: 1,
    bufferedAmount: 0,
    send: (frame: string) => deps.sent?.push(frame),
    close: () => {},
  } as unknown as WebSocket;
  const principal: Principal = {
    caller: {
      kind: "key",
      key: { id: "k", orgId: ORG } as never,
      claims: { sub: "a" },
      expiresAt: Date.now() / 1000 + 3600,
    },
    orgId: ORG,
    scopes: new Set(["state.read"]),
    authContext: { sub: "a" },
  };
  const connection = new Connection(socket, principal, {
    maxSubscriptions,
    highWaterBytes: 1 << 20,
  });
  return { hub, connection };
}

test("a flood of subscribes with one request id starts no more store reads than the limit", () => {
  // The store is slow: no read ends while the flood comes in.
  let reads = 0;
  const { hub, connection } = socketOf({
    stillValid: () => {
      reads++;
      return new Promise<boolean>(() => {});
    },
  });
  for (let i = 0; i < 1000; i++) {
    void hub.subscribe(connection, subscribe);
    if (i % 2 === 1) hub.unsubscribe(connection, "r1");
  }
  hub.close();
  assert.ok(reads <= maxSubscriptions, `${reads} store reads under way for one socket`);
});

test("admitted at once, a flood of subscribes starts no more instance reads than the limit", async () => {
  // The admission answers at once; the read of the instance (its allowRead) never ends.
  let reads = 0;
  const { hub, connection } = socketOf({
    stillValid: () => Promise.resolve(true),
    readInstanceRow: () => {
      reads++;
      return new Promise<never>(() => {});
    },
  });
  for (let i = 0; i < 200; i++) {
    void hub.subscribe(connection, subscribe);
    // Each admission ends before the unsubscribe and the next subscribe arrive.
    await new Promise((resolve) => setImmediate(resolve));
    hub.unsubscribe(connection, "r1");
  }
  hub.close();
  assert.ok(reads >= 1, "the reads started");
  assert.ok(reads <= maxSubscriptions, `${reads} instance reads under way for one socket`);
});

test("subscribes replayed while the first ones are admitted are no new attempts, and lose none", async () => {
  // More subscriptions than half the limit, each sent twice (the client replays its subscribes
  // when the socket opens, and may have queued them too).
  let admit: (valid: boolean) => void = () => {};
  const admitted = new Promise<boolean>((resolve) => (admit = resolve));
  let reads = 0;
  const sent: string[] = [];
  const { hub, connection } = socketOf({
    stillValid: () => admitted,
    readInstanceRow: () => {
      reads++;
      const state = { state: "on", tags: [], done: false, ts: 1 };
      return Promise.resolve({ instanceId: 1, state });
    },
    sent,
  });
  const ids = Array.from({ length: 8 }, (_, i) => `r${i}`);
  const subscribes = [...ids, ...ids].map((requestId) =>
    hub.subscribe(connection, { ...subscribe, requestId, machineInstanceName: requestId }),
  );
  admit(true);
  await Promise.all(subscribes);
  hub.close();
  assert.deepEqual([...connection.subscriptions.keys()].sort(), ids);
  assert.equal(reads, ids.length, "one read per subscription");
  const errors = sent.filter((frame) => frame.includes('"error"'));
  assert.deepEqual(errors, []);
});
