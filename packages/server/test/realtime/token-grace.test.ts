// The realtime endpoint's grace for expired tokens. The official client puts its token in the
// socket's URL once and reconnects with that URL ever after, so a socket that drops after the
// token expired comes back with the expired token; the endpoint accepts it for a while (a day by
// default), where the HTTP API keeps its 30 s of clock skew. Time moves with a skewed clock the
// servers are given, never by sleeping.
import assert from "node:assert/strict";
import type { Duplex } from "node:stream";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { systemClock, type Clock } from "../../src/engine/clock.js";
import { DEFAULT_TOKEN_GRACE_SECONDS } from "../../src/realtime/realtime-server.js";
import { startApiServer, type ApiKey, type ApiServer } from "../support/api-server.js";
import { openSocket, rtUrl, type Message, type RawSocket } from "./raw-socket.js";
import { officialClient } from "../support/official-client.js";

const COUNTER = `
import { createMachine, assign } from "xstate";
export default createMachine({
  id: "counter",
  initial: "open",
  context: { public: { count: 0 } },
  states: {
    open: { on: { inc: { actions: assign({ public: ({ context }) => ({ count: context.public.count + 1 }) }) } } },
  },
});
export const allowRead = () => true;
export const allowWrite = () => true;
`;

/** A clock that runs with the system's and can be moved forward. */
function skewedClock() {
  let skewMs = 0;
  const clock: Clock = {
    now: () => Date.now() + skewMs,
    setTimeout: (callback, ms) => systemClock.setTimeout(callback, ms),
  };
  return {
    clock,
    /** The clock's time in whole seconds, as tokens count it. */
    nowSeconds: () => Math.floor(clock.now() / 1000),
    advance: (seconds: number) => (skewMs += seconds * 1000),
  };
}

type Served = {
  api: ApiServer;
  key: ApiKey;
  time: ReturnType<typeof skewedClock>;
  /** A token of `userKey` that expires `seconds` from the server's now (negative: ago). */
  token(seconds: number, userKey?: ApiKey): Promise<string>;
  newInstance(): Promise<string>;
  inc(instance: string): Promise<void>;
};

let instances = 0;

async function serve(realtime: { tokenGraceSeconds?: number }): Promise<Served> {
  const time = skewedClock();
  const api = await startApiServer({
    clock: time.clock,
    realtime: { ...realtime, credentialCheckMs: 100 },
  });
  const served: Served = {
    api,
    time,
    key: await api.createKey(["state.read", "instances.write"]),
    token: (seconds, userKey = served.key) =>
      api.tokenFor(userKey, { sub: "alice" }, time.nowSeconds() + seconds),
    async newInstance() {
      const name = `c${++instances}`;
      const created = await call(served, "POST", "/machines/counter", { slug: name });
      assert.equal(created.status, 200, JSON.stringify(created));
      return name;
    },
    async inc(instance) {
      const sent = await call(served, "POST", `/machines/counter/i/${instance}/events`, {
        event: "inc",
      });
      assert.equal(sent.status, 200, JSON.stringify(sent));
    },
  };
  await api.admin("POST", "/machines", { slug: "counter" });
  const { signedId, upload } = await api.uploadVersion("counter", COUNTER);
  assert.ok(upload.ok);
  await api.admin("PUT", `/machines/counter/v/${signedId}`, { makeCurrent: true });
  return served;
}

/** An HTTP call with a token fresh by the server's clock (or the one given). */
async function call(served: Served, method: string, path: string, body?: unknown, token?: string) {
  const response = await fetch(served.api.url + path, {
    method,
    headers: {
      authorization: `Bearer ${token ?? (await served.token(3600))}`,
      "content-type": "application/json",
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

const subscribe = (requestId: string, instance: string) => ({
  type: "subscribe-to-instance",
  requestId,
  machineName: "counter",
  machineInstanceName: instance,
});

const countIs = (instance: string, count: number) => (m: Message) =>
  m.type === "instance-update" &&
  m.machineInstanceName === instance &&
  (m.publicContext as { count: number }).count === count;

const errorFor = (requestId: string) => (m: Message) =>
  m.type === "error" && m.requestId === requestId;

async function waitFor(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what}`);
    await sleep(10);
  }
}

const HOUR = 3600;
/** The clock skew every token gets on top of the grace (the authenticator's default). */
const SKEW = 30;

describe("with the default grace", () => {
  let served: Served;
  before(async () => (served = await serve({})));
  after(() => served.api.dispose());

  test("the official client's subscription resumes after a reconnect with its token expired meanwhile", async () => {
    const { api } = served;
    const first = await served.newInstance();
    const second = await served.newInstance();
    // What the server's side of every socket is, and the URL each handshake asked for.
    const sockets: Duplex[] = [];
    const handshakeUrls: string[] = [];
    const onUpgrade = (request: { url?: string }, socket: Duplex) => {
      handshakeUrls.push(request.url ?? "");
      sockets.push(socket);
    };
    api.server.httpServer.on("upgrade", onUpgrade);
    const token = await served.token(60);
    const client = officialClient(api.url, token);
    const counts: number[] = [];
    const failures: unknown[] = [];
    const count = (update: { publicContext?: unknown }) =>
      (update.publicContext as { count: number }).count;
    const stopFirst = client.machineInstances.subscribe(
      "counter",
      first,
      (update) => counts.push(count(update)),
      (err) => failures.push(err),
    );
    let stopSecond = () => {};
    try {
      await waitFor(() => counts.length === 1, "the first state");
      // Two hours later (a laptop's sleep), the token has long expired; the server drops the
      // socket (a deploy, a network change), and the client reconnects at once with its URL.
      served.time.advance(2 * HOUR);
      for (const socket of sockets) socket.destroy();
      await waitFor(() => handshakeUrls.length === 2, "the client's reconnect");
      assert.equal(new URL(handshakeUrls[1]!, api.url).searchParams.get("token"), token);
      await served.inc(first);
      await waitFor(() => counts.includes(1), "an update after the reconnect");

      // A new subscription hours later rides on the same socket, with the same token.
      const seconds: number[] = [];
      stopSecond = client.machineInstances.subscribe(
        "counter",
        second,
        (update) => seconds.push(count(update)),
        (err) => failures.push(err),
      );
      await waitFor(() => seconds.length === 1, "a new subscription's first state");
      await served.inc(second);
      await waitFor(() => seconds.includes(1), "the new subscription's update");
      assert.deepEqual(failures, []);
    } finally {
      stopFirst();
      stopSecond();
      api.server.httpServer.off("upgrade", onUpgrade);
    }
  });

  test("beyond the grace, a handshake is refused as an expired token always was", async () => {
    const { api } = served;
    const beyond = await served.token(-(DEFAULT_TOKEN_GRACE_SECONDS + SKEW + 60));
    await assert.rejects(openSocket(rtUrl(api.url, beyond)), {
      status: 403,
      code: "token-expired",
    });
    // Just within it, one opens.
    const within = await served.token(-(DEFAULT_TOKEN_GRACE_SECONDS + SKEW - 60));
    const socket = await openSocket(rtUrl(api.url, within));
    await socket.close();
  });

  test("a new subscription on a live socket: admitted within the grace, refused beyond it", async () => {
    const live = await served.newInstance();
    const later = await served.newInstance();
    const socket = await openSocket(rtUrl(served.api.url, await served.token(60)));
    try {
      socket.send(subscribe("live", live));
      await socket.next(countIs(live, 0));
      served.time.advance(2 * HOUR);
      socket.send(subscribe("within", later));
      await socket.next(countIs(later, 0));

      served.time.advance(DEFAULT_TOKEN_GRACE_SECONDS);
      socket.send(subscribe("late", live));
      const late = await socket.next(errorFor("late"));
      assert.deepEqual([late.status, late.code], [403, "token-expired"]);
      // A live subscription is never cut off by expiry.
      await served.inc(live);
      await socket.next(countIs(live, 1));
    } finally {
      await socket.close();
    }
  });

  test("a deleted key's token is refused within the grace, and its sockets are closed", async () => {
    const { api } = served;
    const instance = await served.newInstance();
    const doomed = await api.createKey(["state.read"], "doomed");
    const expired = await served.token(-2 * HOUR, doomed);
    const socket = await openSocket(rtUrl(api.url, expired));
    try {
      socket.send(subscribe("r", instance));
      await socket.next(countIs(instance, 0));
      const closed = new Promise<number>((resolve) => socket.ws.once("close", resolve));
      assert.equal((await api.admin("DELETE", `/keys/${doomed.id}`)).status, 204);
      assert.equal(await closed, 1008);
      await assert.rejects(openSocket(rtUrl(api.url, expired)), {
        status: 403,
        code: "token-unknown-key",
      });
    } finally {
      await socket.close();
    }
  });

  test("the HTTP API keeps its 30 s of clock skew: no grace there", async () => {
    const instance = await served.newInstance();
    const path = `/machines/counter/i/${instance}`;
    const inSkew = await served.token(-10);
    assert.equal((await call(served, "GET", path, undefined, inSkew)).status, 200);
    const expired = await served.token(-2 * HOUR);
    const refused = await call(served, "GET", path, undefined, expired);
    assert.deepEqual([refused.status, refused.body.code], [403, "token-expired"]);
    // The same token still opens a socket.
    await (await openSocket(rtUrl(served.api.url, expired))).close();
  });
});

describe("with a grace of 0", () => {
  let served: Served;
  before(async () => (served = await serve({ tokenGraceSeconds: 0 })));
  after(() => served.api.dispose());

  test("only the clock skew: a token expired beyond it is refused at the handshake", async () => {
    const url = rtUrl(served.api.url, await served.token(-(SKEW + 60)));
    await assert.rejects(openSocket(url), { status: 403, code: "token-expired" });
    const inSkew = await openSocket(rtUrl(served.api.url, await served.token(-10)));
    await inSkew.close();
  });

  test("a live socket's token expired beyond the skew admits no new subscription", async () => {
    const live = await served.newInstance();
    const socket: RawSocket = await openSocket(rtUrl(served.api.url, await served.token(60)));
    try {
      socket.send(subscribe("live", live));
      await socket.next(countIs(live, 0));
      served.time.advance(60 + SKEW + 1);
      socket.send(subscribe("late", live));
      const late = await socket.next(errorFor("late"));
      assert.deepEqual([late.status, late.code], [403, "token-expired"]);
      await served.inc(live);
      await socket.next(countIs(live, 1));
    } finally {
      await socket.close();
    }
  });
});

test("a bad grace is refused at start", async () => {
  for (const tokenGraceSeconds of [-1, 1.5, NaN]) {
    const started = await startApiServer({ realtime: { tokenGraceSeconds } }).catch(
      (error: unknown) => error,
    );
    if (started instanceof TypeError) continue;
    if (!(started instanceof Error)) await (started as ApiServer).dispose();
    assert.fail(`a grace of ${tokenGraceSeconds} was not refused with a TypeError`);
  }
});
