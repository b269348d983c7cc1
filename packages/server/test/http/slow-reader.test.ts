// A client that asks for an answer and never reads it: node keeps the connection, and the answer
// buffered in it, for as long as the client stays connected (the keep-alive timeout starts only
// once the answer has gone out), so such clients could hold every place under the connection
// cap. The server now gives an answer a bounded time to go out once it is written.
import assert from "node:assert/strict";
import type { Socket } from "node:net";
import { test } from "node:test";
import { createHttpServer } from "../../src/http/node-server.js";
import { connectRawClient } from "../support/raw-http-client.js";

test(
  "a connection whose client never reads its answer is closed by the server",
  {
    timeout: 30_000,
  },
  async (t) => {
    // More than the socket buffers on both sides hold, so most of it waits in the server.
    const answer = Buffer.alloc(16 << 20, "a");
    const server = createHttpServer(
      (_incoming, outgoing) => {
        outgoing.writeHead(200, { "content-length": answer.byteLength }).end(answer);
      },
      { responseDeliveryMs: 200 },
    );
    const serverSide = new Promise<Socket>((resolve) => server.once("connection", resolve));
    const client = await connectRawClient(t, server);
    // Sends its request, then never reads.
    client.pause();
    client.write("GET /big HTTP/1.1\r\nhost: x\r\n\r\n");

    const socket = await serverSide;
    await new Promise((resolve) => socket.once("close", resolve));
    assert.ok(socket.destroyed);
    assert.ok(socket.bytesWritten < answer.byteLength + 1024, "the answer was not all delivered");
  },
);
