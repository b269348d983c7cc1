// The handshake's limits, on a bare HTTP server with stand-in dependencies: no engine or store is
// needed to show what the handshake itself lets through.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { Authenticator } from "../../src/auth/authenticator.js";
import type { Caller } from "../../src/auth/principal.js";
import type { Engine } from "../../src/engine/engine.js";
import { silentLogger } from "../../src/engine/logger.js";
import { attachRealtime } from "../../src/realtime/realtime-server.js";
import type { Store } from "../../src/store/store.js";
import { openSocket } from "./raw-socket.js";

test("handshakes verified together cannot take more sockets than maxConnections", async () => {
  const caller: Caller = {
    kind: "key",
    key: { id: "sbk_k", orgId: "org_o", scopes: ["state.read"] } as never,
    claims: { sub: "a" },
    expiresAt: Date.now() / 1000 + 3600,
  };
  // Verifying takes a while (a store read, on a real server): every handshake below is under
  // way before the first is accepted.
  const authenticator = {
    verify: () => sleep(100).then(() => caller),
    stillValid: () => Promise.resolve(true),
  } as unknown as Authenticator;
  const engine = { onInstanceUpdate: () => () => {}, watchReaders: () => {} } as unknown as Engine;
  const server = createServer();
  const realtime = attachRealtime(
    server,
    { engine, store: {} as Store, authenticator, logger: silentLogger },
    { maxConnections: 2 },
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/rt?token=t`;
  const outcomes = await Promise.allSettled(Array.from({ length: 6 }, () => openSocket(url)));
  try {
    const opened = outcomes.filter((o) => o.status === "fulfilled");
    const refused = outcomes.filter((o) => o.status === "rejected");
    assert.equal(opened.length, 2, "sockets held at once");
    assert.equal(realtime.connections, 2);
    for (const outcome of refused) assert.equal((outcome.reason as { status: number }).status, 503);
  } finally {
    for (const outcome of outcomes) {
      if (outcome.status === "fulfilled") outcome.value.ws.terminate();
    }
    realtime.close();
    await new Promise((resolve) => server.close(resolve));
  }
});
