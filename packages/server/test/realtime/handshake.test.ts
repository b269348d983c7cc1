// The handshake, on a bare HTTP server with stand-in dependencies: no engine or store is needed
// to show what the handshake itself lets through.
import assert from "node:assert/strict";
import { STATUS_CODES, createServer, type Server } from "node:http";
import { connect } from "node:net";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { test } from "node:test";
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
  // Verifying takes a while (a store read, on a real server). Here it lasts until every
  // handshake below is either verifying or refused: all are under way before any is accepted.
  const HANDSHAKES = 6;
  let verifying = 0;
  let refusals = 0;
  const allUnderWay = deferred<void>();
  const underWay = () => {
    if (verifying + refusals === HANDSHAKES) allUnderWay.resolve();
  };
  const authenticator = {
    verify: () => {
      verifying++;
      underWay();
      return allUnderWay.promise.then(() => caller);
    },
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
  const outcomes = await Promise.allSettled(
    Array.from({ length: HANDSHAKES }, () =>
      openSocket(url).catch((error: unknown) => {
        refusals++;
        underWay();
        throw error;
      }),
    ),
  );
  try {
    const opened = outcomes.filter((o) => o.status === "fulfilled");
    const refused = outcomes.filter((o) => o.status === "rejected");
    assert.equal(opened.length, 2, "sockets held at once");
    assert.equal(realtime.connections, 2);
    for (const outcome of refused) {
      const { status, code } = outcome.reason as { status: number; code: string };
      // The cap's own code: the database had nothing to do with it.
      assert.deepEqual({ status, code }, { status: 503, code: "too-many-connections" });
    }
  } finally {
    for (const outcome of outcomes) {
      if (outcome.status === "fulfilled") outcome.value.ws.terminate();
    }
    realtime.close();
    await new Promise((resolve) => server.close(resolve));
  }
});

test("an upgrade whose request target is no URL is refused, and the server lives on", async () => {
  const engine = { onInstanceUpdate: () => () => {}, watchReaders: () => {} } as unknown as Engine;
  const server = createServer((_request, response) => response.end("alive"));
  const realtime = attachRealtime(server, {
    engine,
    store: {} as Store,
    authenticator: {} as Authenticator,
    logger: silentLogger,
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    // "//[" is a path the HTTP parser lets through but the URL parser throws on: that threw out
    // of the server's upgrade listener, and so took down the whole process, before any token.
    for (const [target, status, code] of [
      ["//[", 404, "not-found"],
      ["http://[/rt", 400, "invalid-parameter"],
      ["/rt\\x", 400, "invalid-parameter"],
    ] as const) {
      const reply = await rawUpgrade(server, target);
      assert.equal(reply.split("\r\n")[0], `HTTP/1.1 ${status} ${STATUS_CODES[status]}`, target);
      const body = JSON.parse(reply.slice(reply.indexOf("\r\n\r\n") + 4)) as { code: string };
      assert.equal(body.code, code);
    }
    const port = (server.address() as AddressInfo).port;
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), "alive");
  } finally {
    realtime.close();
    await new Promise((resolve) => server.close(resolve));
  }
});

/** Sends an upgrade request for `target` on a raw connection and answers all it got back. */
function rawUpgrade(server: Server, target: string): Promise<string> {
  const { port } = server.address() as AddressInfo;
  return new Promise((resolve, reject) => {
    let reply = "";
    const socket = connect(port, "127.0.0.1", () =>
      socket.write(
        `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
          "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
      ),
    );
    // No answer at all (the listener threw) must fail the test, not hang it.
    socket.setTimeout(2000, () => socket.destroy());
    socket.on("data", (chunk: Buffer) => (reply += chunk.toString()));
    socket.on("close", () => resolve(reply));
    socket.on("error", reject);
  });
}

test("a client that resets its connection while its token is checked leaves the server up", async () => {
  const engine = { onInstanceUpdate: () => () => {}, watchReaders: () => {} } as unknown as Engine;
  // The token is refused once the client has reset its connection (the check is a store read,
  // on a real server: a client can be gone by the time it ends).
  const verifying = deferred<void>();
  const refusal = deferred<Caller>();
  const authenticator = {
    verify: () => {
      verifying.resolve();
      return refusal.promise;
    },
  } as unknown as Authenticator;
  const server = createServer((_request, response) => response.end("alive"));
  const realtime = attachRealtime(server, {
    engine,
    store: {} as Store,
    authenticator,
    logger: silentLogger,
  });
  // The server's end of the connection, to see when the server is done with it. Only 'close'
  // is listened to: an 'error' listener here would hide the unhandled error this test is about.
  const serverEndClosed = new Promise<void>((resolve) =>
    server.once("upgrade", (_request, socket: Duplex) => socket.once("close", () => resolve())),
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  try {
    // Node's HTTP server takes its error listener off a socket it hands to `upgrade`: the reset
    // (or the refusal written to a reset socket) was an unhandled 'error' that ended the process.
    const socket = connect(port, "127.0.0.1", () => {
      socket.write(
        "GET /rt?token=t HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
          "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
      );
    });
    socket.on("error", () => {});
    await verifying.promise;
    socket.resetAndDestroy();
    await new Promise((resolve) => socket.once("close", resolve));
    refusal.reject(new Error("refused"));
    await serverEndClosed;
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), "alive");
  } finally {
    realtime.close();
    await new Promise((resolve) => server.close(resolve));
  }
});

/** A promise with its resolve and reject at hand (Node 20 has no Promise.withResolvers). */
function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
