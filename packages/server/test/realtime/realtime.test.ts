// Realtime over /rt: the official client's subscribe and actor, and a raw ws client for what the
// client hides (frames, errors, slow readers), against a real server on a loopback port.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { errors } from "@statebacked/client";
import WebSocket from "ws";
import { startApiServer, type ApiKey, type ApiServer } from "../support/api-server.js";
import { openSocket, rtUrl, type Message, type RawSocket } from "./raw-socket.js";
import { MAX_PRECHECKED_READERS } from "../../src/engine/read-audience.js";
import { officialClient } from "../support/official-client.js";

// A counter whose "secret" state only its owner may read, with a durable timer and a payload
// event that makes each update large (to fill a slow reader's buffers quickly).
const WATCHED = `
import { createMachine, assign } from "xstate";
export default createMachine({
  id: "watched",
  initial: "open",
  context: { public: { count: 0, pad: "" } },
  states: {
    open: {
      on: {
        inc: { actions: "inc" },
        pad: { actions: assign({ public: ({ context, event }) => ({ ...context.public, pad: "x".repeat(event.bytes) }) }) },
        hide: "secret",
        arm: "armed",
      },
    },
    armed: { after: { 300: { target: "open", actions: "inc" } } },
    secret: { on: { show: "open", inc: { actions: "inc" } } },
  },
}, {
  actions: { inc: assign({ public: ({ context }) => ({ ...context.public, count: context.public.count + 1 }) }) },
});
export const allowRead = ({ state, authContext }) =>
  authContext.sub !== "eve" && (state !== "secret" || authContext.sub === "owner");
export const allowWrite = () => true;
`;

let api: ApiServer;
let key: ApiKey;
let readOnly: ApiKey;
let instanceCount = 0;

before(async () => {
  api = await startApiServer({
    realtime: { highWaterBytes: 64 * 1024, credentialCheckMs: 100 },
  });
  const admin = clientFor(api.adminToken, { orgId: api.orgId });
  await admin.machines.create("watched");
  await admin.machineVersions.create("watched", { code: WATCHED, makeCurrent: true });
  key = await api.createKey(["state.read", "instances.write"]);
  readOnly = await api.createKey(["instances.write"]);
});
after(() => api.dispose());

function clientFor(token: string | (() => Promise<string>), opts: object = {}) {
  return officialClient(api.url, token, opts);
}

const user = (sub: string) => clientFor(() => api.tokenFor(key, { sub }));

async function newInstance(): Promise<string> {
  const name = `w${++instanceCount}`;
  await user("owner").machineInstances.create("watched", { slug: name });
  return name;
}

async function socketFor(sub: string, userKey: ApiKey = key, expiresAt?: number) {
  return openSocket(rtUrl(api.url, await api.tokenFor(userKey, { sub }, expiresAt)));
}

const isUpdate = (instance: string, state?: string) => (m: Message) =>
  m.type === "instance-update" &&
  m.machineInstanceName === instance &&
  (state === undefined || m.state === state);

/** Subscribes each socket to the instance (request id "r") and waits for its open state. */
async function watchOpen(sockets: RawSocket[], instance: string): Promise<void> {
  for (const socket of sockets) {
    socket.send({
      type: "subscribe-to-instance",
      requestId: "r",
      machineName: "watched",
      machineInstanceName: instance,
    });
    await socket.next(isUpdate(instance, "open"));
  }
}

const countOf = (m: Message) => (m.publicContext as { count: number }).count;

describe("the official client", () => {
  test("a second subscribe to an instance the client already watches gets its state at once", async () => {
    const name = await newInstance();
    const alice = user("alice");
    const first: number[] = [];
    const second: number[] = [];
    const count = (update: { publicContext?: unknown }) =>
      (update.publicContext as { count: number }).count;
    const stopFirst = alice.machineInstances.subscribe("watched", name, (u) =>
      first.push(count(u)),
    );
    let stopSecond = () => {};
    try {
      await waitFor(() => first.length === 1);
      // The same client shares one socket: this subscription's first state is the one the
      // socket already has.
      stopSecond = alice.machineInstances.subscribe("watched", name, (u) => second.push(count(u)));
      await waitFor(() => second.length === 1);
      assert.deepEqual(second, [0]);
      await user("bob").machineInstances.sendEvent("watched", name, { event: "inc" });
      await waitFor(() => second.length === 2);
      assert.deepEqual(second, [0, 1]);
      assert.equal(first.at(-1), 1);
    } finally {
      stopFirst();
      stopSecond();
    }
  });

  test("subscribe: the current state at once, then every change sent by another client", async () => {
    const name = await newInstance();
    const seen: Array<{ state: unknown; count: number; ts: number }> = [];
    const errorsSeen: unknown[] = [];
    const alice = user("alice");
    const unsubscribe = alice.machineInstances.subscribe(
      "watched",
      name,
      (update) =>
        seen.push({
          state: update.state,
          count: (update.publicContext as { count: number }).count,
          ts: update.ts,
        }),
      (err) => errorsSeen.push(err),
    );
    try {
      await waitFor(() => seen.length === 1);
      const bob = user("bob");
      for (let i = 0; i < 5; i++) {
        await bob.machineInstances.sendEvent("watched", name, { event: "inc" });
      }
      await waitFor(() => seen.length === 6);
      await quietWindow();
      assert.deepEqual(
        seen.map((s) => s.count),
        [0, 1, 2, 3, 4, 5],
        "each state once, in order",
      );
      assert.ok(seen.every((s, i) => i === 0 || s.ts > seen[i - 1]!.ts));
      assert.deepEqual(errorsSeen, []);
    } finally {
      unsubscribe();
    }
  });

  test("an actor follows changes made elsewhere and its own sends", async () => {
    const name = await newInstance();
    const actor = await user("alice").machineInstances.getActor<{ type: "inc" }>("watched", name);
    const counts: number[] = [];
    const subscription = actor.subscribe((state) =>
      counts.push((state.context.public as { count: number }).count),
    );
    try {
      await user("bob").machineInstances.sendEvent("watched", name, { event: "inc" });
      await waitFor(() => counts.includes(1));
      actor.send({ type: "inc" });
      await waitFor(() => counts.includes(2));
      assert.deepEqual(counts.slice(-1), [2]);
    } finally {
      subscription.unsubscribe();
    }
  });

  test("a subscription allowRead refuses reports a RejectedByMachineAuthorizerError", async () => {
    const name = await newInstance();
    const failures: unknown[] = [];
    const unsubscribe = user("eve").machineInstances.subscribe(
      "watched",
      name,
      () => assert.fail("eve must not see the instance"),
      (err) => failures.push(err),
    );
    try {
      await waitFor(() => failures.length === 1);
      assert.ok(failures[0] instanceof errors.RejectedByMachineAuthorizerError);
    } finally {
      unsubscribe();
    }
  });
});

describe("raw sockets", () => {
  test("a durable timer's transition reaches subscribers with no client event", async () => {
    const name = await newInstance();
    const socket = await socketFor("alice");
    try {
      socket.send({
        type: "subscribe-to-instance",
        requestId: "r1",
        machineName: "watched",
        machineInstanceName: name,
      });
      await socket.next(isUpdate(name, "open"));
      await user("bob").machineInstances.sendEvent("watched", name, { event: "arm" });
      await socket.next(isUpdate(name, "armed"));
      const fired = await socket.next(isUpdate(name, "open"), 2);
      assert.equal(countOf(fired), 1);
    } finally {
      await socket.close();
    }
  });

  test("a subscribe repeated with its request id changes nothing: one state, one update per change", async () => {
    const name = await newInstance();
    const socket = await socketFor("alice");
    try {
      const subscribe = {
        type: "subscribe-to-instance",
        requestId: "same",
        machineName: "watched",
        machineInstanceName: name,
      };
      socket.send(subscribe);
      await socket.next(isUpdate(name));
      socket.send(subscribe);
      await user("bob").machineInstances.sendEvent("watched", name, { event: "inc" });
      await socket.next((m) => isUpdate(name)(m) && countOf(m) === 1);
      await quietWindow();
      assert.deepEqual(
        socket.messages.filter(isUpdate(name)).map(countOf),
        [0, 1],
        "the first state once, the change once",
      );
    } finally {
      await socket.close();
    }
  });

  test("two subscriptions on one instance: each its first state, then one update per change", async () => {
    const name = await newInstance();
    const socket = await socketFor("alice");
    try {
      for (const requestId of ["a", "b"]) {
        socket.send({
          type: "subscribe-to-instance",
          requestId,
          machineName: "watched",
          machineInstanceName: name,
        });
      }
      // Both subscriptions have their first state before the change: a subscribe the server
      // took after the change would rightly get the changed state as its first.
      const firstStates = () =>
        socket.messages.filter((m) => isUpdate(name)(m) && countOf(m) === 0);
      await waitFor(() => firstStates().length === 2);
      await user("bob").machineInstances.sendEvent("watched", name, { event: "inc" });
      await socket.next((m) => isUpdate(name)(m) && countOf(m) === 1);
      await quietWindow();
      assert.equal(socket.messages.filter((m) => isUpdate(name)(m) && countOf(m) === 1).length, 1);
      // The current state once per subscribe (each subscriber's first), the change once.
      assert.equal(firstStates().length, 2);
    } finally {
      await socket.close();
    }
  });

  test("a state change that revokes read access ends the subscription with an error", async () => {
    const name = await newInstance();
    const alice = await socketFor("alice");
    const owner = await socketFor("owner");
    try {
      await watchOpen([alice, owner], name);
      await user("bob").machineInstances.sendEvent("watched", name, { event: "hide" });
      await owner.next(isUpdate(name, "secret"));
      const refused = await alice.next((m) => m.type === "error");
      assert.deepEqual(
        [refused.requestId, refused.status, refused.code],
        ["r", 403, "rejected-by-machine-authorizer"],
      );
      await user("bob").machineInstances.sendEvent("watched", name, { event: "show" });
      await owner.next(isUpdate(name, "open"), 2);
      await quietWindow();
      assert.ok(!alice.messages.some(isUpdate(name, "secret")), "no secret state leaked");
      assert.equal(alice.messages.filter(isUpdate(name)).length, 1, "nothing after the revocation");
    } finally {
      await alice.close();
      await owner.close();
    }
  });

  test("watchers' allowRead is asked with each step: no separate read call per update", async () => {
    const name = await newInstance();
    const { pool } = api.server.backstate;
    const call = pool.call.bind(pool);
    const ops: string[] = [];
    pool.call = (target, op, payload, options) => {
      ops.push(op);
      return call(target, op, payload, options);
    };
    const sockets = await Promise.all(["alice", "owner"].map((sub) => socketFor(sub)));
    try {
      await watchOpen(sockets, name);
      ops.length = 0;
      const bob = user("bob");
      await bob.machineInstances.sendEvent("watched", name, { event: "inc" });
      await bob.machineInstances.sendEvent("watched", name, { event: "hide" });
      await sockets[1]!.next(isUpdate(name, "secret"));
      const refused = await sockets[0]!.next((m) => m.type === "error");
      assert.equal(refused.code, "rejected-by-machine-authorizer");
      assert.ok(!sockets[0]!.messages.some(isUpdate(name, "secret")), "no secret state leaked");
      assert.ok(!ops.includes("read"), `no separate read: ${ops.join(", ")}`);
    } finally {
      pool.call = call;
      await Promise.all(sockets.map((socket) => socket.close()));
    }
  });

  test("more distinct readers than a step asks about: each still gets its own answer", async () => {
    const name = await newInstance();
    // More than MAX_PRECHECKED_READERS users, the owner last: the later readers' answers come
    // from a separate read of the committed state, the earlier ones' with the step.
    const subs = [
      ...Array.from({ length: MAX_PRECHECKED_READERS + 2 }, (_, i) => `u${i}`),
      "owner",
    ];
    const sockets = await Promise.all(subs.map((sub) => socketFor(sub)));
    try {
      await watchOpen(sockets, name);
      await user("bob").machineInstances.sendEvent("watched", name, { event: "inc" });
      await Promise.all(
        sockets.map((socket) => socket.next((m) => isUpdate(name)(m) && countOf(m) === 1)),
      );
      await user("bob").machineInstances.sendEvent("watched", name, { event: "hide" });
      const owner = sockets.at(-1)!;
      await owner.next(isUpdate(name, "secret"));
      for (const socket of sockets.slice(0, -1)) {
        const refused = await socket.next((m) => m.type === "error");
        assert.equal(refused.code, "rejected-by-machine-authorizer");
        assert.ok(!socket.messages.some(isUpdate(name, "secret")), "no secret state leaked");
      }
    } finally {
      await Promise.all(sockets.map((socket) => socket.close()));
    }
  });

  test("malformed messages get error messages and the socket keeps working", async () => {
    const socket = await socketFor("alice");
    try {
      socket.send("this is not json");
      socket.send({ type: "subscribe-to-instance", requestId: "bad" });
      socket.send({
        type: "subscribe-to-instance",
        requestId: "names",
        machineName: "../etc",
        machineInstanceName: "x",
      });
      socket.send({ type: "no-such-type" });
      socket.ws.send(Buffer.from([1, 2, 3]), { binary: true });
      await socket.next((m) => m.type === "error" && m.requestId === "names");
      const errorsSeen = socket.messages.filter((m) => m.type === "error");
      assert.equal(errorsSeen.length, 5);
      assert.ok(errorsSeen.every((m) => m.status === 400 && m.code === "invalid-parameter"));
      socket.send({ type: "ping" });
      await socket.next((m) => m.type === "pong");
      assert.equal(socket.ws.readyState, WebSocket.OPEN);
    } finally {
      await socket.close();
    }
  });

  // Expired socket tokens, and the grace they get: token-grace.test.ts.
  test("missing instances and missing scopes are refused", async () => {
    const name = await newInstance();
    const subscribe = (requestId: string, instance = name) => ({
      type: "subscribe-to-instance",
      requestId,
      machineName: "watched",
      machineInstanceName: instance,
    });
    const noScope = await socketFor("alice", readOnly);
    const socket = await socketFor("alice");
    try {
      noScope.send(subscribe("s"));
      const scopeError = await noScope.next((m) => m.type === "error");
      assert.deepEqual([scopeError.status, scopeError.code], [403, "missing-scope"]);

      socket.send(subscribe("live"));
      socket.send(subscribe("missing", "nobody-here"));
      const missing = await socket.next((m) => m.type === "error" && m.requestId === "missing");
      assert.equal(missing.status, 404);
      await socket.next(isUpdate(name, "open"));
    } finally {
      await noScope.close();
      await socket.close();
    }
  });

  test("the handshake refuses a missing or bad token with an HTTP status", async () => {
    // Expired beyond the realtime grace (a day by default) and the clock skew.
    const longAgo = Math.floor(Date.now() / 1000) - 24 * 3600 - 300;
    const expired = await api.tokenFor(key, { sub: "a" }, longAgo);
    for (const url of [
      rtUrl(api.url, "not-a-token"),
      rtUrl(api.url, expired),
      rtUrl(api.url, "").replace("token=", "nothing="),
    ]) {
      await assert.rejects(openSocket(url), { status: 403 });
    }
  });

  test("deleting a key closes its sockets, and only its sockets", async () => {
    const name = await newInstance();
    const doomed = await api.createKey(["state.read", "instances.write"], "doomed");
    const revoked = await socketFor("alice", doomed);
    const kept = await socketFor("alice");
    const subscribe = { type: "subscribe-to-instance", machineName: "watched" };
    try {
      revoked.send({ ...subscribe, requestId: "r", machineInstanceName: name });
      kept.send({ ...subscribe, requestId: "k", machineInstanceName: name });
      await revoked.next(isUpdate(name));
      await kept.next(isUpdate(name));
      const closed = new Promise<number>((resolve, reject) => {
        revoked.ws.once("close", resolve);
        setTimeout(() => reject(new Error("the socket of the deleted key stayed open")), 5000);
      });
      assert.equal((await api.admin("DELETE", `/keys/${doomed.id}`)).status, 204);
      assert.equal(await closed, 1008);
      await user("bob").machineInstances.sendEvent("watched", name, { event: "inc" });
      await kept.next((m) => isUpdate(name)(m) && countOf(m) === 1);
      assert.equal(kept.ws.readyState, WebSocket.OPEN);
      // The deleted key cannot open a socket again either.
      await assert.rejects(socketFor("alice", doomed), { status: 403 });
    } finally {
      await revoked.close();
      await kept.close();
    }
  });

  test("deleting an instance tells its subscribers", async () => {
    const name = await newInstance();
    const socket = await socketFor("alice");
    try {
      socket.send({
        type: "subscribe-to-instance",
        requestId: "d",
        machineName: "watched",
        machineInstanceName: name,
      });
      await socket.next(isUpdate(name));
      const hmac = (await import("../../src/http/routes/instances.js")).instanceDeletionHmac(
        "watched",
        name,
      );
      const deleted = await api.admin("DELETE", `/machines/watched/i/${name}`, {
        dangerDataWillBeDeletedForever: true,
        hmacSha256OfMachineInstanceNameWithMachineNameKey: hmac,
      });
      assert.equal(deleted.status, 204);
      const gone = await socket.next((m) => m.type === "error");
      assert.deepEqual([gone.requestId, gone.status], ["d", 404]);
    } finally {
      await socket.close();
    }
  });

  test("a stalled reader does not delay a fast one, and later gets the latest state", async () => {
    const name = await newInstance();
    const stalled = await socketFor("alice");
    const fast = await socketFor("bob");
    try {
      for (const socket of [stalled, fast]) {
        socket.send({
          type: "subscribe-to-instance",
          requestId: "r",
          machineName: "watched",
          machineInstanceName: name,
        });
        await socket.next(isUpdate(name));
      }
      const sender = user("carol");
      await sender.machineInstances.sendEvent("watched", name, {
        event: { type: "pad", bytes: 200_000 },
      });
      // The stalled client stops reading: its kernel buffers fill, then the server's.
      stalled.ws.pause();
      const events = 60;
      for (let i = 0; i < events; i++) {
        await sender.machineInstances.sendEvent("watched", name, { event: "inc" });
      }
      await fast.next((m) => isUpdate(name)(m) && countOf(m) === events, 0, 10_000);
      assert.equal(
        fast.messages.filter(isUpdate(name)).length,
        events + 2,
        "the fast reader got every update",
      );
      stalled.ws.resume();
      await stalled.next((m) => isUpdate(name)(m) && countOf(m) === events, 0, 10_000);
      const counts = stalled.messages.filter(isUpdate(name)).map(countOf);
      assert.ok(counts.length < events + 2, `stale updates were dropped (${counts.length})`);
      assert.deepEqual(
        counts,
        [...counts].sort((a, b) => a - b),
        "what arrives is still in order",
      );
    } finally {
      await stalled.close();
      await fast.close();
    }
  });

  test("a client that sends without reading its answers is not read further", async () => {
    const socket = await socketFor("alice");
    try {
      // Each request is refused with an error naming its request id; the client reads none of
      // them. Once its buffers and the server's are full, the server must stop reading requests
      // (its send path holds what waits); it used to keep every answer in memory, ~4 bytes for
      // every byte the client sent, for as long as the client kept sending.
      const sent = await sendWithoutReading(socket);
      assert.ok(
        socket.ws.bufferedAmount >= 1024 * 1024,
        `the server read all ${sent} requests of a client that reads nothing`,
      );
      // Once the client reads again, the server does too, and answers every request.
      socket.ws.resume();
      const last = await socket.next((m) => m.requestId === `${BAD_ID}${sent - 1}`, 0, 20_000);
      assert.equal(last.status, 400);
      assert.equal(socket.messages.length, sent);
    } finally {
      socket.ws.terminate();
    }
  });

  test("a socket closed while its answers wait finishes closing at once", async () => {
    const doomed = await api.createKey(["state.read"], "closed while behind");
    const socket = await socketFor("alice", doomed);
    const giveUp = new AbortController();
    try {
      // As above: the server holds answers for this client and has stopped reading it.
      await sendWithoutReading(socket);
      const closed = new Promise<number>((resolve) => socket.ws.once("close", resolve));
      assert.equal((await api.admin("DELETE", `/keys/${doomed.id}`)).status, 204);
      // A window for the credential check (every 100 ms) to close the socket while the client
      // still reads nothing; nothing the paused client can see marks it. Were it too short on a
      // slow machine, the test would check less, not fail.
      await sleep(300);
      socket.ws.resume();
      // Unless the server reads the client's close frame, the close ends only at ws's 30 s close
      // timeout; 20 s tells that apart from any slowness.
      const outcome = await Promise.race([
        closed,
        sleep(20_000, "not closed before ws's close timeout", { signal: giveUp.signal }),
      ]);
      assert.equal(outcome, 1008);
    } finally {
      giveUp.abort();
      socket.ws.terminate();
    }
  });
});

const BAD_ID = "x".repeat(100);

/**
 * Stops reading the socket and sends it invalid subscribes (each answered with an error) until
 * its own send buffer holds 1 MiB, i.e. the server stopped reading too, or 300,000 were sent.
 * Answers how many were sent: request ids BAD_ID + 0, 1, ….
 */
async function sendWithoutReading(socket: RawSocket): Promise<number> {
  socket.ws.pause();
  let sent = 0;
  while (socket.ws.bufferedAmount < 1024 * 1024 && sent < 300_000) {
    for (let i = 0; i < 10_000; i++, sent++) {
      socket.send(`{"type":"subscribe-to-instance","requestId":"${BAD_ID}${sent}"}`);
    }
    await sleep(100);
  }
  return sent;
}

/**
 * A short wait before checking that nothing more came (a duplicate update, a leaked state). Kept
 * only where no event marks "nothing more will come"; a slow machine makes it see less, it
 * cannot make the check fail.
 */
const quietWindow = () => sleep(150);

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await sleep(10);
  }
}

test("a malformed WebSocket handshake is refused with the API's JSON error", async () => {
  const { request } = await import("node:http");
  const url = new URL(rtUrl(api.url, await api.tokenFor(key, { sub: "a" })).replace(/^ws/, "http"));
  const response = await new Promise<{ status: number; type: string; body: string }>(
    (resolve, reject) => {
      const req = request(url, {
        headers: { connection: "Upgrade", upgrade: "websocket", "sec-websocket-key": "short" },
      });
      req.on("upgrade", () => reject(new Error("upgraded")));
      req.on("response", (res) => {
        let body = "";
        res.on("data", (chunk: Buffer) => (body += chunk.toString()));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, type: res.headers["content-type"] ?? "", body }),
        );
      });
      req.on("error", reject);
      req.end();
    },
  );
  assert.equal(response.status, 400);
  assert.equal(response.type, "application/json");
  assert.equal((JSON.parse(response.body) as { code: string }).code, "invalid-parameter");
});
