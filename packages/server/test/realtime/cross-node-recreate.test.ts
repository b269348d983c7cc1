// An instance deleted through node B and made again under its name, with a subscriber on node A
// (two nodes on PostgreSQL). A socket is shown one row of a name: the new row is another
// instance, whatever its name and ts.
// 1. A's listener lags (its notices reach A some 600 ms late): a subscription made on A to the
//    instance as it now is (the new row) goes on when the old row's delete notice arrives.
// 2. A's listener is cut while B deletes and makes it again: after the reconnect (resync), A's
//    subscriber of the old instance is told it was deleted (404), not moved over to the new one.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import {
  startAnotherNode,
  startApiServer,
  type ApiKey,
  type ApiServer,
} from "../support/api-server.js";
import { runOnPostgres } from "../support/store-target.js";
import { openSocket, rtUrl, type Message } from "./raw-socket.js";
import { officialClient } from "../support/official-client.js";
import { COUNTER, cutListener, listenerName } from "./two-nodes.js";

const LISTENER_OF_A = listenerName("node_rc_a");
/** While set, node A's listening connection hands on its notices this much later. */
let lagOfA = 0;
// eslint-disable-next-line @typescript-eslint/unbound-method
const emit = pg.Client.prototype.emit;
pg.Client.prototype.emit = function (this: pg.Client, event: string | symbol, ...args: unknown[]) {
  const name = (this as unknown as { connectionParameters?: { application_name?: string } })
    .connectionParameters?.application_name;
  if (event === "notification" && name === LISTENER_OF_A && lagOfA > 0) {
    setTimeout(() => emit.call(this, event, ...args), lagOfA);
    return true;
  }
  return emit.call(this, event, ...args);
} as typeof pg.Client.prototype.emit;

await runOnPostgres("deleted and made again across nodes", () => {
  let a: ApiServer;
  let b: ApiServer;
  let key: ApiKey;
  let instances = 0;

  before(async () => {
    a = await startApiServer({ nodeId: "node_rc_a", sandboxes: { size: 1 } });
    b = await startAnotherNode(a, { sandboxes: { size: 1 } });
    const admin = officialClient(a.url, a.adminToken, { orgId: a.orgId });
    await admin.machines.create("counter");
    await admin.machineVersions.create("counter", { code: COUNTER, makeCurrent: true });
    key = await a.createKey(["state.read", "instances.write", "instances.admin"]);
  });
  after(async () => {
    await b?.dispose();
    await a?.dispose();
  });

  const user = (node: ApiServer) =>
    officialClient(node.url, () => node.tokenFor(key, { sub: "u" }), {});
  const adminOf = (node: ApiServer) =>
    officialClient(node.url, node.adminToken, { orgId: node.orgId });
  const isCount = (count: number) => (m: Message) =>
    m.type === "instance-update" && (m.publicContext as { count: number }).count === count;
  async function subscribeOnA(name: string) {
    const socket = await openSocket(rtUrl(a.url, await a.tokenFor(key, { sub: "u" })));
    socket.send({
      type: "subscribe-to-instance",
      requestId: "r",
      machineName: "counter",
      machineInstanceName: name,
    });
    return socket;
  }
  const deleteThroughB = (name: string) =>
    adminOf(b).machineInstances.dangerously.delete("counter", name, {
      dangerDataWillBeDeletedForever: true,
    });

  describe("an instance deleted and made again under its name", () => {
    test("a late notice of the old row's delete ends no subscription to the new row", async () => {
      const name = `rc${++instances}`;
      await user(b).machineInstances.create("counter", { slug: name });
      await user(b).machineInstances.sendEvent("counter", name, { event: "inc" });
      lagOfA = 600;
      try {
        await deleteThroughB(name);
        await user(b).machineInstances.create("counter", { slug: name });
        // The subscriber on A sees the new instance (count 0)...
        const socket = await subscribeOnA(name);
        try {
          await socket.next(isCount(0));
          await user(b).machineInstances.sendEvent("counter", name, { event: "inc" });
          // ...and must go on seeing it: the instance exists and is being changed.
          await sleep(1500);
          const errors = socket.messages.filter((m) => m.type === "error");
          assert.deepEqual(errors, [], "the live instance's subscription was ended");
          assert.ok(socket.messages.some(isCount(1)), "the new row's update reached A");
        } finally {
          await socket.close();
        }
      } finally {
        lagOfA = 0;
      }
    });

    test("deleted and made again while A's listener was cut: A's subscriber is told of the delete", async () => {
      const name = `rc${++instances}`;
      await user(b).machineInstances.create("counter", { slug: name });
      await user(b).machineInstances.sendEvent("counter", name, { event: "inc" });
      const socket = await subscribeOnA(name);
      try {
        await socket.next(isCount(1));
        await cutListener(a, "node_rc_a");
        await deleteThroughB(name);
        await user(b).machineInstances.create("counter", { slug: name });
        await sleep(1500);
        const kinds = socket.messages.map((m) =>
          m.type === "error"
            ? `error:${String(m.status)}`
            : `count:${String((m.publicContext as { count: number }).count)}`,
        );
        assert.ok(
          kinds.includes("error:404"),
          `the subscription to the deleted instance should end with 404; A's socket got ${JSON.stringify(kinds)}`,
        );
      } finally {
        await socket.close();
      }
    });
  });
  return Promise.resolve();
});
