// `backstate serve` with more clients than it may hold: the connection cap (--max-connections,
// BACKSTATE_MAX_CONNECTIONS) answers the excess 503 while the connections it holds keep working,
// and under a low open-file limit the default cap stays below it, so clients are refused with an
// answer instead of dropped, and the server neither dies nor stops answering.
import assert from "node:assert/strict";
import { BlockList, connect, type Socket } from "node:net";
import { networkInterfaces } from "node:os";
import { test, type TestContext } from "node:test";
import { runCli, served, stop, tempDir, type Served } from "./support/cli.js";

const TIMEOUT = { timeout: 90_000 };

/** What became of a connection that sent its request's headers (and waits to send its body). Refused: 503 or 429. */
type Outcome = "held" | "refused" | "dropped";

type Client = { socket: Socket; received(): string; outcome: Promise<Outcome> };

/**
 * Connects and starts a request whose body waits for the server's go-ahead: node answers
 * "100 Continue" once the request is in the server's hands, so "held" means the server took it.
 * The token exchange reads the whole body before it answers, so the request stays in flight.
 */
function startRequest(t: TestContext, url: string): Client {
  const { hostname, port } = new URL(url);
  const socket = connect({ host: hostname, port: Number(port) });
  t.after(() => socket.destroy());
  let data = "";
  socket.setEncoding("latin1");
  socket.on("error", () => {});
  const outcome = new Promise<Outcome>((resolve) => {
    socket.on("data", (chunk: string) => {
      data += chunk;
      if (data.startsWith("HTTP/1.1 100 ")) resolve("held");
      if (/^HTTP\/1\.1 (503|429) /.test(data)) resolve("refused");
    });
    socket.once("close", () => resolve("dropped"));
  });
  socket.write(
    "POST /tokens HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\n" +
      "content-type: application/x-www-form-urlencoded\r\ncontent-length: 2\r\n\r\n",
  );
  return { socket, received: () => data, outcome };
}

/** Sends the held request's body (an empty form, which the exchange refuses: 400), then its answer's status. */
async function finish(client: Client): Promise<number> {
  client.socket.write("x=");
  for (;;) {
    const answer = /HTTP\/1\.1 ([2-5]\d\d) /.exec(client.received());
    if (answer) return Number(answer[1]);
    if (client.socket.destroyed) throw new Error(`no answer: ${client.received()}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A fresh client's status, retried until the server has room (it frees it as sockets close). */
async function answeredOnceRoom(t: TestContext, server: Served): Promise<number> {
  for (;;) {
    const client = startRequest(t, server.url);
    if ((await client.outcome) === "held") return finish(client);
    client.socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function outcomes(clients: Client[]): Promise<Record<Outcome, number>> {
  const counts: Record<Outcome, number> = { held: 0, refused: 0, dropped: 0 };
  for (const outcome of await Promise.all(clients.map((client) => client.outcome))) {
    counts[outcome]++;
  }
  return counts;
}

test(
  "--max-connections (over its variable): the 4th connection gets 503 while the 3 held answer",
  TIMEOUT,
  async (t) => {
    const server = await served(
      runCli(["serve", "--port", "0", "--data-dir", tempDir(t), "--max-connections", "3"], {
        BACKSTATE_MAX_CONNECTIONS: "5",
      }),
    );
    t.after(() => server.child.kill("SIGKILL"));
    const held = [startRequest(t, server.url), startRequest(t, server.url)];
    held.push(startRequest(t, server.url));
    assert.deepEqual(await outcomes(held), { held: 3, refused: 0, dropped: 0 });

    const fourth = startRequest(t, server.url);
    assert.equal(await fourth.outcome, "refused");
    await new Promise((resolve) => fourth.socket.once("close", resolve));
    assert.match(fourth.received(), /connection: close/i);
    assert.match(fourth.received(), /"code":"too-many-connections"/);

    for (const client of held) assert.equal(await finish(client), 400);
    held[0]!.socket.destroy();
    assert.equal(await answeredOnceRoom(t, server), 400);
    assert.match(server.stderr(), /at the connection cap/);
    assert.deepEqual(await stop(server), { code: 0, signal: null });
  },
);

test(
  "under a low open-file limit, the default cap refuses the excess with a 503 instead of dropping it",
  TIMEOUT,
  async (t) => {
    // 128 files: the default cap is 64 connections, the rest of the descriptors kept in reserve.
    const server = await served(
      runCli(["serve", "--port", "0", "--data-dir", tempDir(t)], {}, { openFileLimit: 128 }),
    );
    t.after(() => server.child.kill("SIGKILL"));
    const clients = Array.from({ length: 84 }, () => startRequest(t, server.url));
    assert.deepEqual(await outcomes(clients), { held: 64, refused: 20, dropped: 0 });
    for (const client of clients.filter((c) => c.received().startsWith("HTTP/1.1 100 "))) {
      assert.equal(await finish(client), 400);
    }
    for (const client of clients) client.socket.destroy();
    assert.equal(await answeredOnceRoom(t, server), 400);
    assert.deepEqual(await stop(server), { code: 0, signal: null });
  },
);

test(
  "past the open-file limit (a cap set above it), accepting fails without killing the server",
  TIMEOUT,
  async (t) => {
    const server = await served(
      runCli(
        ["serve", "--port", "0", "--data-dir", tempDir(t), "--max-connections", "1000"],
        {},
        { openFileLimit: 128 },
      ),
    );
    t.after(() => server.child.kill("SIGKILL"));
    assert.match(server.stderr(), /more than the open-file limit leaves room for/);
    const clients = Array.from({ length: 200 }, () => startRequest(t, server.url));
    const counts = await outcomes(clients);
    // Out of descriptors, the server closes what it cannot take (EMFILE while accepting).
    assert.ok(counts.dropped > 0, JSON.stringify(counts));
    assert.equal(server.child.exitCode, null, "still running");
    for (const client of clients) client.socket.destroy();
    // It answers again once connections close: it neither died nor got stuck accepting.
    assert.equal(await answeredOnceRoom(t, server), 400);
    assert.deepEqual(await stop(server), { code: 0, signal: null });
  },
);

/** Where the server does not hold clients to a share: this machine and private networks. */
const LOCAL = new BlockList();
for (const [network, prefix] of [
  ["127.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.168.0.0", 16],
] as const) {
  LOCAL.addSubnet(network, prefix, "ipv4");
}

/** An IPv4 address of this machine's that the server counts as a client of its own, if any. */
function nonLocalAddress(): string | undefined {
  return Object.values(networkInterfaces())
    .flat()
    .find((entry) => entry?.family === "IPv4" && !LOCAL.check(entry.address, "ipv4"))?.address;
}

test(
  "--max-connections-per-address (over its variable): a client's 3rd connection gets 429",
  TIMEOUT,
  async (t) => {
    const address = nonLocalAddress();
    if (address === undefined) {
      return t.skip("no address on this machine outside loopback and private networks");
    }
    const server = await served(
      runCli(
        [
          ...["serve", "--port", "0", "--host", "0.0.0.0", "--data-dir", tempDir(t)],
          ...["--max-connections-per-address", "2"],
        ],
        { BACKSTATE_MAX_CONNECTIONS_PER_ADDRESS: "5" },
      ),
    );
    t.after(() => server.child.kill("SIGKILL"));
    const url = `http://${address}:${new URL(server.url).port}`;
    const held = [startRequest(t, url), startRequest(t, url)];
    assert.deepEqual(await outcomes(held), { held: 2, refused: 0, dropped: 0 });

    const third = startRequest(t, url);
    assert.equal(await third.outcome, "refused");
    await new Promise((resolve) => third.socket.once("close", resolve));
    assert.match(third.received(), /^HTTP\/1\.1 429 /);
    assert.match(third.received(), /"code":"too-many-connections-from-address"/);
    // On loopback, this machine's own clients (a reverse proxy, say) are not limited.
    const local = [1, 2, 3].map(() => startRequest(t, server.url.replace("0.0.0.0", "127.0.0.1")));
    assert.deepEqual(await outcomes(local), { held: 3, refused: 0, dropped: 0 });

    for (const client of [...held, ...local]) assert.equal(await finish(client), 400);
    assert.match(server.stderr(), /a client holds its share of connections/);
    assert.deepEqual(await stop(server), { code: 0, signal: null });
  },
);
