// A refused WebSocket handshake (no token, a wrong path, the realtime cap) is answered with the
// API's JSON and the server's end is half-closed. Node hands an upgrade's socket over with no
// timeout and half-open connections allowed, and the connection cap counts an upgraded socket as
// never idle: a client that read its 403 and simply kept its end open held the connection, and
// its place under the cap, for ever. Two such clients kept every later one out of a node capped
// at two connections (503), an hour later still, and close() waited on them for ever.
import assert from "node:assert/strict";
import { connect, type AddressInfo, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { test } from "node:test";
import type { Authenticator } from "../../src/auth/authenticator.js";
import type { Engine } from "../../src/engine/engine.js";
import { silentLogger } from "../../src/engine/logger.js";
import { createHttpServer } from "../../src/http/node-server.js";
import { attachRealtime } from "../../src/realtime/realtime-server.js";
import type { Store } from "../../src/store/store.js";

const HANDSHAKE =
  "GET /rt HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
  "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

test(
  "a refused handshake's connection is closed by the server, even if the client keeps it open",
  {
    timeout: 30_000,
  },
  async (t) => {
    let now = 0;
    const server = createHttpServer((_incoming, outgoing) => outgoing.end("alive"), {
      maxConnections: 2,
      now: () => now,
    });
    const engine = {
      onInstanceUpdate: () => () => {},
      watchReaders: () => {},
    } as unknown as Engine;
    const realtime = attachRealtime(server, {
      engine,
      store: {} as Store,
      authenticator: {} as Authenticator,
      logger: silentLogger,
    });
    const serverEnds: Duplex[] = [];
    server.on("upgrade", (_request, socket: Duplex) => serverEnds.push(socket));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const clients: Socket[] = [];
    t.after(async () => {
      for (const client of clients) client.destroy();
      realtime.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    });

    // Two clients ask for a socket without a token, read the 403, and keep their end open.
    for (let i = 0; i < 2; i++) {
      const client = connect({ port, host: "127.0.0.1", allowHalfOpen: true });
      clients.push(client);
      client.on("error", () => {});
      const answer = await new Promise<string>((resolve) => {
        let text = "";
        client.on("data", (chunk: Buffer) => {
          text += chunk.toString("latin1");
          if (text.includes("}")) resolve(text);
        });
        client.write(HANDSHAKE);
      });
      assert.match(answer, /^HTTP\/1\.1 403 /);
    }

    // The server lets go of both in a bounded time.
    const closed = await Promise.all(
      serverEnds.map(
        (socket) =>
          new Promise<boolean>((resolve) => {
            if (socket.destroyed) return resolve(true);
            const timer = setTimeout(() => resolve(false), 10_000);
            socket.once("close", () => {
              clearTimeout(timer);
              resolve(true);
            });
          }),
      ),
    );
    assert.deepEqual(closed, [true, true], "the server's ends of the refused connections");

    // And a later client is served, however long the refused ones have been kept.
    now += 60 * 60 * 1000;
    const response = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(response.status, 200);
    assert.equal(await response.text(), "alive");
  },
);
