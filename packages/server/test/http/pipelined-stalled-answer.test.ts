// Three pipelined requests: the client reads the first answer whole, then stops reading while the
// second (large) one goes out. Lifting the delivery timeout because a third request still waits
// for the connection left the second answer with no timeout at all: the connection, and the
// answer buffered in it, were held for as long as the client liked.
import assert from "node:assert/strict";
import type { Socket } from "node:net";
import { test } from "node:test";
import { createHttpServer } from "../../src/http/node-server.js";
import { connectRawClient } from "../support/raw-http-client.js";

test(
  "an answer behind a pipelined one still times out when the client stops reading it",
  { timeout: 30_000 },
  async (t) => {
    const large = Buffer.alloc(32 << 20, "a");
    const server = createHttpServer(
      (incoming, outgoing) => {
        if (incoming.url === "/small") outgoing.end("small");
        else outgoing.end(large);
      },
      { responseDeliveryMs: 200 },
    );
    const serverSockets: Socket[] = [];
    server.on("connection", (socket: Socket) => serverSockets.push(socket));
    const client = await connectRawClient(t, server);
    let received = 0;
    const firstRead = new Promise<void>((resolve) => {
      client.on("data", (chunk: Buffer) => {
        received += chunk.length;
        // The first answer is in: read no more.
        if (received > large.byteLength) {
          client.pause();
          resolve();
        }
      });
    });
    client.write(
      "GET /large HTTP/1.1\r\nhost: x\r\n\r\n" +
        "GET /large HTTP/1.1\r\nhost: x\r\n\r\n" +
        "GET /small HTTP/1.1\r\nhost: x\r\n\r\n",
    );
    await firstRead;
    const serverSocket = serverSockets[0];
    assert.ok(serverSocket !== undefined);
    const closed = await Promise.race([
      new Promise((resolve) => serverSocket.once("close", () => resolve(true))),
      new Promise((resolve) => setTimeout(() => resolve(serverSocket.destroyed), 5_000)),
    ]);
    assert.equal(closed, true, "the stalled connection was cut");
  },
);
