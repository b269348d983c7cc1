// A client that pipelines its requests: a large answer, then a request whose answer takes its time
// (an event waits up to 90 s for its instance to settle). The time a written answer gets to go out
// (node-server.ts) stayed on the connection once node handed it to the next answer, as an idle
// timeout: the connection was cut while the second request was still being answered, its outcome
// lost to the client, however fast the client read.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createHttpServer } from "../../src/http/node-server.js";
import { connectRawClient } from "../support/raw-http-client.js";

test(
  "a pipelined request may take longer to answer than an answer may take to go out",
  {
    timeout: 30_000,
  },
  async (t) => {
    const large = Buffer.alloc(8 << 20, "a");
    const server = createHttpServer(
      (incoming, outgoing) => {
        if (incoming.url === "/large") outgoing.end(large);
        // Well past the delivery time below, and not a byte on the connection meanwhile.
        else setTimeout(() => outgoing.end("slow"), 1_000);
      },
      { responseDeliveryMs: 200 },
    );
    const client = await connectRawClient(t, server);
    let received = "";
    client.setEncoding("latin1");
    // Read as fast as it comes.
    client.on("data", (chunk: string) => (received += chunk));
    const closed = new Promise((resolve) => client.once("close", resolve));
    client.write(
      "GET /large HTTP/1.1\r\nhost: x\r\n\r\n" +
        "POST /slow HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    );
    await closed;
    assert.equal(received.length > large.byteLength, true, "the large answer arrived");
    assert.ok(
      received.endsWith("\r\n\r\nslow"),
      `the slow answer arrived: …${received.slice(-80)}`,
    );
  },
);
