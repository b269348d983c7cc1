// Realtime across the nodes of a PostgreSQL cluster (two servers in this process, one schema): a
// subscriber on node A is told of what is committed through node B, including deletions, timers
// B armed, and what B committed while A's listening connection was cut.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "../../src/engine/logger.js";
import {
  startAnotherNode,
  startApiServer,
  type ApiKey,
  type ApiServer,
} from "../support/api-server.js";
import { runOnPostgres } from "../support/store-target.js";
import { openSocket, rtUrl, type Message } from "./raw-socket.js";
import { officialClient } from "../support/official-client.js";
import { COUNTER, cutListener } from "./two-nodes.js";

await runOnPostgres("realtime across nodes", () => {
  let a: ApiServer;
  let b: ApiServer;
  let key: ApiKey;
  let instances = 0;
  const logsOfA: string[] = [];
  const recording: Logger = {
    debug() {},
    info: (message) => logsOfA.push(message),
    warn: (message) => logsOfA.push(message),
    error: (message) => logsOfA.push(message),
  };

  before(async () => {
    a = await startApiServer({ nodeId: "node_xa", logger: recording, sandboxes: { size: 1 } });
    b = await startAnotherNode(a, { sandboxes: { size: 1 } });
    const admin = clientFor(a, a.adminToken, { orgId: a.orgId });
    await admin.machines.create("counter");
    await admin.machineVersions.create("counter", { code: COUNTER, makeCurrent: true });
    key = await a.createKey(["state.read", "instances.write", "instances.admin"]);
  });
  after(async () => {
    await b?.dispose();
    await a?.dispose();
  });

  function clientFor(node: ApiServer, token: string | (() => Promise<string>), opts = {}) {
    return officialClient(node.url, token, opts);
  }
  const user = (node: ApiServer) => clientFor(node, () => node.tokenFor(key, { sub: "u" }));

  /** A new instance (created through `creator`, B unless told) and a socket on A subscribed to it. */
  async function watchedOnA(creator: ApiServer = b) {
    const name = `c${++instances}`;
    await user(creator).machineInstances.create("counter", { slug: name });
    const socket = await openSocket(rtUrl(a.url, await a.tokenFor(key, { sub: "u" })));
    socket.send({
      type: "subscribe-to-instance",
      requestId: "r",
      machineName: "counter",
      machineInstanceName: name,
    });
    await socket.next(isCount(0));
    return { name, socket };
  }

  const isCount = (count: number) => (m: Message) =>
    m.type === "instance-update" && (m.publicContext as { count: number }).count === count;
  const counts = (messages: Message[]) =>
    messages
      .filter((m) => m.type === "instance-update")
      .map((m) => (m.publicContext as { count: number }).count);

  describe("realtime across nodes", () => {
    test("a subscriber on node A sees each event sent through node B, once, in order", async () => {
      const { name, socket } = await watchedOnA();
      try {
        // One event at a time: node A loads another node's latest state when told of a commit,
        // so a burst faster than those loads reaches A as fewer, later states (latest wins, as
        // for a slow reader); each event given time is seen, once and in order.
        for (let i = 1; i <= 10; i++) {
          await user(b).machineInstances.sendEvent("counter", name, { event: "inc" });
          await socket.next(isCount(i));
        }
        // A window for a duplicate to show up: no event marks that none will (too short on a slow
        // machine, it sees less; it cannot fail the test).
        await sleep(100);
        assert.deepEqual(counts(socket.messages), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      } finally {
        await socket.close();
      }
    });

    test("an instance deleted through node B ends node A's subscription", async () => {
      const { name, socket } = await watchedOnA();
      try {
        const admin = clientFor(b, b.adminToken, { orgId: b.orgId });
        await admin.machineInstances.dangerously.delete("counter", name, {
          dangerDataWillBeDeletedForever: true,
        });
        const ended = await socket.next((m) => m.type === "error");
        assert.deepEqual([ended.requestId, ended.status, ended.code], ["r", 404, "not-found"]);
      } finally {
        await socket.close();
      }
    });

    test("what B commits while A's listening connection is cut still reaches A", async () => {
      const { name, socket } = await watchedOnA();
      try {
        await cutListener(a, "node_xa");
        // Sent at once: the first ones land before A's listener is back.
        const bob = user(b);
        for (let i = 0; i < 20; i++) {
          await bob.machineInstances.sendEvent("counter", name, { event: "inc" });
        }
        await socket.next(isCount(20));
        assert.ok(logsOfA.includes("lost the change-notice connection; reconnecting"));
        assert.ok(logsOfA.includes("the change-notice connection is back"));
        const seen = counts(socket.messages);
        assert.deepEqual(
          seen,
          [...seen].sort((x, y) => x - y),
          "never an older state after a newer one",
        );
      } finally {
        await socket.close();
      }
    });

    test("a timer armed through B fires through A after B has stopped", async () => {
      const c = await startAnotherNode(a, { sandboxes: { size: 1 } });
      let stopped = false;
      try {
        const { name, socket } = await watchedOnA(c);
        try {
          await user(c).machineInstances.sendEvent("counter", name, { event: "arm" });
          await c.dispose();
          stopped = true;
          // A learned of the timer from C's notice: it fires on time, not at A's next idle look.
          const fired = await socket.next((m) => isCount(1)(m) && m.state === "open", 0, 3000);
          assert.equal(fired.state, "open");
        } finally {
          await socket.close();
        }
      } finally {
        if (!stopped) await c.dispose();
      }
    });
  });
  return Promise.resolve();
});
