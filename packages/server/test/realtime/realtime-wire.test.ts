// The /rt frames themselves against api-contract §6: the fields of an instance-update (and none
// beyond them), publicContext as an object even when the context has no `public`, the same `ts`
// as the HTTP answer for the same state, unsubscribes, the org query parameter of an admin
// session, and another org's instance of the same name staying out of reach.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startApiServer, type ApiKey, type ApiServer } from "../support/api-server.js";
import { openSocket, rtUrl, type Message } from "./raw-socket.js";
import { adminClient } from "../support/official-client.js";

// A context with no `public` at all: nothing of it may reach an end user.
const PRIVATE = `
import { createMachine, assign } from "xstate";
export default createMachine({
  id: "private",
  initial: "idle",
  context: { secret: "s3cret", n: 0 },
  states: { idle: { tags: ["quiet"], on: { bump: { actions: assign({ n: ({ context }) => context.n + 1 }) } } } },
});
export const allowRead = () => true;
export const allowWrite = () => true;
`;

const UPDATE_FIELDS = [
  "type",
  "machineName",
  "machineInstanceName",
  "state",
  "publicContext",
  "tags",
  "done",
  "ts",
].sort();

let api: ApiServer;
let key: ApiKey;

const subscribe = (requestId: string, instance: string, machineName = "private") => ({
  type: "subscribe-to-instance",
  requestId,
  machineName,
  machineInstanceName: instance,
});

const updateOf = (instance: string) => (m: Message) =>
  m.type === "instance-update" && m.machineInstanceName === instance;

before(async () => {
  api = await startApiServer();
  await api.admin("POST", "/machines", { slug: "private" });
  const { signedId } = await api.uploadVersion("private", PRIVATE);
  const finalized = await api.admin("PUT", `/machines/private/v/${signedId}`, {
    makeCurrent: true,
  });
  assert.equal(finalized.status, 200);
  key = await api.createKey(["state.read", "instances.write"]);
});

after(() => api.dispose());

async function send(instance: string, event: unknown) {
  const response = await fetch(`${api.url}/machines/private/i/${instance}/events`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${await api.tokenFor(key, { sub: "u" })}`,
      "content-type": "application/json",
    },
    body: JSON.stringify({ event }),
  });
  assert.equal(response.status, 200);
  return (await response.json()) as { ts: number; publicContext: unknown };
}

describe("instance-update frames", () => {
  test("exactly the contract's fields, publicContext {} without context.public, and HTTP's ts", async () => {
    const created = await api.admin("POST", "/machines/private", { slug: "frames" });
    assert.equal(created.status, 200);
    assert.deepEqual(created.body.publicContext, {});
    const socket = await openSocket(rtUrl(api.url, await api.tokenFor(key, { sub: "u" })));
    try {
      socket.send(subscribe("r", "frames"));
      const first = await socket.next(updateOf("frames"));
      assert.deepEqual(Object.keys(first).sort(), UPDATE_FIELDS);
      assert.deepEqual(first.publicContext, {});
      assert.deepEqual(
        [first.machineName, first.state, first.tags, first.done, first.ts],
        ["private", "idle", ["quiet"], false, created.body.ts],
      );

      const sent = await send("frames", "bump");
      const pushed = await socket.next((m) => m.type === "instance-update" && m.ts !== first.ts);
      assert.equal(pushed.ts, sent.ts, "the update carries the ts the HTTP answer gave");
      assert.deepEqual(pushed.publicContext, {});
      assert.ok(!JSON.stringify(socket.messages).includes("s3cret"), "no private context");
    } finally {
      await socket.close();
    }
  });

  test("after an unsubscribe, the instance's changes are no longer sent", async () => {
    await api.admin("POST", "/machines/private", { slug: "unsub" });
    const socket = await openSocket(rtUrl(api.url, await api.tokenFor(key, { sub: "u" })));
    try {
      socket.send(subscribe("r1", "unsub"));
      const first = await socket.next(updateOf("unsub"));
      socket.send({
        type: "unsubscribe-from-instance",
        requestId: "r1",
        machineName: "private",
        machineInstanceName: "unsub",
      });
      // A round trip on the socket: the unsubscribe has been handled once the pong comes.
      socket.send({ type: "ping" });
      await socket.next((m) => m.type === "pong");
      const unseen = await send("unsub", "bump");

      // Subscribed again: the state now, then the next change. A change sent to the
      // unsubscribed r1 would come before that next change (updates of an instance keep order).
      socket.send(subscribe("r2", "unsub"));
      const again = await socket.next((m) => m.type === "instance-update" && m.ts === unseen.ts);
      const later = await send("unsub", "bump");
      await socket.next((m) => m.type === "instance-update" && m.ts === later.ts);
      const updates = socket.messages.filter((m) => m.type === "instance-update");
      assert.deepEqual(
        updates.map((m) => m.ts),
        [first.ts, again.ts, later.ts],
        "r2's first state and its next change, nothing for r1 after its unsubscribe",
      );
      // An unsubscribe of a request id the socket never had (as the client may replay one
      // queued on an earlier connection) is no error.
      socket.send({
        type: "unsubscribe-from-instance",
        requestId: "never",
        machineName: "private",
        machineInstanceName: "unsub",
      });
      socket.send({ type: "ping" });
      await socket.next((m) => m.type === "pong", socket.messages.length);
      assert.deepEqual(
        socket.messages.filter((m) => m.type === "error"),
        [],
      );
    } finally {
      await socket.close();
    }
  });
});

describe("orgs on /rt", () => {
  test("an admin session names its org in the query, as the official client does", async () => {
    await api.admin("POST", "/machines/private", { slug: "admin-watch" });
    const admin = adminClient(api);
    const seen: unknown[] = [];
    const failures: unknown[] = [];
    const unsubscribe = admin.machineInstances.subscribe(
      "private",
      "admin-watch",
      (update) => seen.push(update.state),
      (error) => failures.push(error),
    );
    try {
      const deadline = Date.now() + 5000;
      while (seen.length === 0 && failures.length === 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.deepEqual(failures, []);
      assert.deepEqual(seen, ["idle"]);
    } finally {
      unsubscribe();
    }
  });

  test("an admin session in several orgs must name one; a key cannot reach another org's instance", async () => {
    const other = await api.otherOrg([
      "machines.write",
      "machine-versions.write",
      "instances.write",
      "state.read",
    ]);
    // The admin now belongs to two orgs: without the org parameter the handshake is refused.
    await assert.rejects(openSocket(rtUrl(api.url, api.adminToken)), {
      status: 400,
      code: "specify-org",
    });

    // The other org has a machine of the same name as this org's; the instance is this org's only.
    const otherToken = await api.tokenFor(other.key, { sub: "x" });
    const call = async (method: string, path: string, body?: unknown) =>
      fetch(`${api.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${otherToken}`, "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    await api.admin("POST", "/machines/private", { slug: "shared-name" });
    assert.equal((await call("POST", "/machines", { slug: "private" })).status, 201);

    const socket = await openSocket(rtUrl(api.url, otherToken));
    try {
      socket.send(subscribe("cross", "shared-name"));
      const refused = await socket.next((m) => m.type === "error" && m.requestId === "cross");
      assert.equal(refused.status, 404);
      // Naming this org in the query changes nothing for a key of the other: its org is the key's.
      const named = await openSocket(rtUrl(api.url, otherToken, api.orgId));
      try {
        named.send(subscribe("cross2", "shared-name"));
        const again = await named.next((m) => m.type === "error" && m.requestId === "cross2");
        assert.equal(again.status, 404);
        assert.ok(!named.messages.some((m) => m.type === "instance-update"));
      } finally {
        await named.close();
      }
      assert.ok(
        !socket.messages.some((m) => m.type === "instance-update"),
        "nothing of this org's instance reached the other org",
      );
    } finally {
      await socket.close();
    }
  });
});
