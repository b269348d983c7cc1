// A raw TCP client of an HTTP server on loopback, for tests that write requests as bytes
// (pipelined ones) or read answers at a pace of their own, as no HTTP client library would.
import type { Server } from "node:http";
import { connect, type AddressInfo, type Socket } from "node:net";
import type { TestContext } from "node:test";

/** Listens on a free loopback port and connects to it; both are closed after the test. */
export async function connectRawClient(t: TestContext, server: Server): Promise<Socket> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const client = connect({ host: "127.0.0.1", port: (server.address() as AddressInfo).port });
  // The server cuts connections on purpose in these tests.
  client.on("error", () => {});
  t.after(() => {
    client.destroy();
    server.closeAllConnections();
    server.close();
  });
  return client;
}
