// The cap on the connections the HTTP server holds: at it, a new client is answered 503 and closed
// at once while the connections already open keep working, room comes back as they close, and a
// connection idle past the keep-alive time the server advertised makes room before anyone is
// refused. Before the cap, the server took every connection until the process ran out of file
// descriptors, and then dropped new ones without a word.
import assert from "node:assert/strict";
import type { Server } from "node:http";
import { connect, type AddressInfo, type Socket } from "node:net";
import { test, type TestContext } from "node:test";
import { silentLogger, type Logger } from "../../src/engine/logger.js";
import { createHttpServer } from "../../src/http/node-server.js";

const TIMEOUT = { timeout: 30_000 };

/** A client connection that collects what the server sends and notes when the server ends it. */
type Client = { socket: Socket; received(): string; ended: Promise<void> };

/**
 * Connects (from `from`, one of this machine's loopback addresses: each is its own client); the
 * test's end closes the connection, whatever became of the test.
 */
function open(t: TestContext, port: number, from = "127.0.0.1"): Promise<Client> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, localAddress: from });
    t.after(() => socket.destroy());
    let data = "";
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => (data += chunk));
    const ended = new Promise<void>((done) => socket.once("close", () => done()));
    socket.once("error", reject);
    socket.once("connect", () => {
      socket.off("error", reject);
      socket.on("error", () => {});
      resolve({ socket, received: () => data, ended });
    });
  });
}

/** Resolves once the client has received `count` complete responses (each with a JSON body). */
async function responses(client: Client, count: number): Promise<number[]> {
  for (;;) {
    const statuses = [...client.received().matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) =>
      Number(m[1]),
    );
    if (statuses.length >= count && client.received().trimEnd().endsWith("}")) return statuses;
    if (client.socket.destroyed) {
      throw new Error(`closed after ${JSON.stringify(client.received())}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const GET = "GET /ping HTTP/1.1\r\nhost: x\r\n\r\n";

async function listening(
  t: TestContext,
  options: Parameters<typeof createHttpServer>[1],
  onRequest: () => void = () => {},
  host = "127.0.0.1",
): Promise<{ server: Server; port: number }> {
  // Answers once the request's body has all arrived.
  const server = createHttpServer((incoming, outgoing) => {
    onRequest();
    incoming.resume();
    incoming.on("end", () => {
      const body = '{"ok":true}';
      outgoing
        .writeHead(200, { "content-type": "application/json", "content-length": body.length })
        .end(body);
    });
  }, options);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { server, port: (server.address() as AddressInfo).port };
}

function connections(server: Server): Promise<number> {
  return new Promise((resolve, reject) =>
    server.getConnections((err, count) => (err ? reject(err) : resolve(count))),
  );
}

test(
  "at the cap, the 6th connection is answered 503 and closed while the first 5 still answer",
  TIMEOUT,
  async (t) => {
    let requests = 0;
    const { server, port } = await listening(
      t,
      { maxConnections: 5, logger: silentLogger },
      () => requests++,
    );
    // Five clients each in the middle of a request: its headers sent, its body not yet.
    const held = await Promise.all(Array.from({ length: 5 }, () => open(t, port)));
    for (const client of held) {
      client.socket.write("POST /slow HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n");
    }
    while (requests < 5) await new Promise((resolve) => setTimeout(resolve, 10));

    const sixth = await open(t, port);
    sixth.socket.write(GET);
    await sixth.ended;
    assert.match(sixth.received(), /^HTTP\/1\.1 503 /);
    assert.match(sixth.received(), /connection: close/i);
    const body = JSON.parse(sixth.received().slice(sixth.received().indexOf("\r\n\r\n") + 4)) as {
      code: string;
    };
    assert.equal(body.code, "too-many-connections");

    // The five finish their requests on the connections they hold, and are answered.
    for (const client of held) client.socket.write("{}");
    for (const client of held) assert.deepEqual(await responses(client, 1), [200]);
    assert.equal(await connections(server), 5);

    // One leaves: a new client gets its place.
    held[0]!.socket.end();
    await held[0]!.ended;
    while ((await connections(server)) > 4) await new Promise((resolve) => setTimeout(resolve, 10));
    const seventh = await open(t, port);
    seventh.socket.write(GET);
    assert.deepEqual(await responses(seventh, 1), [200]);
  },
);

test(
  "at the cap, the connection idle longest past the advertised keep-alive makes room",
  TIMEOUT,
  async (t) => {
    let time = 1_000_000;
    const { logger, lines } = recordingLogger();
    const { port } = await listening(t, { maxConnections: 3, logger, now: () => time });
    const idle: Client[] = [];
    for (let i = 0; i < 3; i++) {
      const client = await open(t, port);
      client.socket.write(GET);
      assert.deepEqual(await responses(client, 1), [200]);
      idle.push(client);
      time += 1_000;
    }
    // Idle, but for less than the 5 s the server told them: they may be reused at any moment.
    const early = await open(t, port);
    early.socket.write(GET);
    await early.ended;
    assert.match(early.received(), /^HTTP\/1\.1 503 /);

    // Past the advertised time: the oldest idle connection is closed to let the newcomer in.
    time += 5_000;
    const late = await open(t, port);
    late.socket.write(GET);
    assert.deepEqual(await responses(late, 1), [200]);
    await idle[0]!.ended;
    assert.equal(idle[0]!.received().match(/HTTP\/1\.1 /g)?.length, 1, "closed without an answer");
    // Both told to the operator: the refusal as a warning, the closing as information.
    assert.deepEqual(lines, [
      "warn: at the connection cap: refusing new connections",
      "info: at the connection cap: closing the longest idle connections to admit new ones",
    ]);
    for (const client of idle.slice(1)) {
      client.socket.write(GET);
      assert.deepEqual(await responses(client, 2), [200, 200]);
    }
  },
);

test(
  "at the cap with none idle, the request arriving longest past the limit makes room",
  TIMEOUT,
  async (t) => {
    let time = 1_000_000;
    let started = 0;
    const { logger, lines } = recordingLogger();
    const { port } = await listening(
      t,
      { maxConnections: 3, logger, now: () => time },
      () => started++,
    );
    // Three clients trickle their bodies: headers in, 10 of 100 bytes sent, never the rest.
    const senders: Client[] = [];
    for (let i = 0; i < 3; i++) {
      const client = await open(t, port);
      client.socket.write(
        "POST /tokens HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n0123456789",
      );
      senders.push(client);
      while (started < i + 1) await new Promise((resolve) => setTimeout(resolve, 10));
      time += 1_000;
    }
    // Not yet past the limit: they may be slow, honest clients.
    const early = await open(t, port);
    early.socket.write(GET);
    await early.ended;
    assert.match(early.received(), /^HTTP\/1\.1 503 /);

    // Past it: the one sending longest is cut to let the newcomer in; the others keep sending.
    time += 10_000;
    const late = await open(t, port);
    late.socket.write(GET);
    assert.deepEqual(await responses(late, 1), [200]);
    await senders[0]!.ended;
    assert.equal(senders[0]!.received(), "", "cut without an answer");
    assert.deepEqual(lines, [
      "warn: at the connection cap: refusing new connections",
      "info: at the connection cap: closing connections whose request has been arriving too long",
    ]);
    for (const client of senders.slice(1)) {
      client.socket.write("x".repeat(90));
      assert.deepEqual(await responses(client, 1), [200]);
    }
  },
);

test("a connection that became a WebSocket is never closed to make room", TIMEOUT, async (t) => {
  let time = 1_000_000;
  const { server, port } = await listening(t, {
    maxConnections: 1,
    logger: silentLogger,
    now: () => time,
  });
  // A stand-in for the realtime endpoint: it takes the socket over and keeps it.
  server.on("upgrade", (_request, socket: Socket) => {
    socket.write(
      "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n",
    );
  });
  const upgraded = await open(t, port);
  upgraded.socket.write(
    "GET /rt HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n",
  );
  while (!upgraded.received().includes("101")) await new Promise((r) => setTimeout(r, 10));
  time += 60_000;
  const newcomer = await open(t, port);
  newcomer.socket.write(GET);
  await newcomer.ended;
  assert.match(newcomer.received(), /^HTTP\/1\.1 503 /);
  assert.equal(upgraded.socket.destroyed, false);
});

/** A logger keeping each line as "level: message". */
function recordingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const keep = (level: string) => (message: string) => void lines.push(`${level}: ${message}`);
  return {
    lines,
    logger: { debug: keep("debug"), info: keep("info"), warn: keep("warn"), error: keep("error") },
  };
}

/** Starts a request whose body the client holds back: the connection is busy, never idle. */
function startSlowPost(client: Client): void {
  client.socket.write("POST /slow HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n");
}

function codeOf(client: Client): string {
  const text = client.received();
  return (JSON.parse(text.slice(text.indexOf("\r\n\r\n") + 4)) as { code: string }).code;
}

async function refusedWith(client: Client): Promise<{ status: string; code: string }> {
  client.socket.write(GET);
  await client.ended;
  assert.match(client.received(), /connection: close/i);
  return { status: client.received().slice(9, 12), code: codeOf(client) };
}

// One client kept many connections busy with cheap requests (never idle, never slow, so never
// reclaimed) and could hold every place under the cap, keeping everyone else out.
for (const host of ["127.0.0.1", "::"]) {
  test(
    `one client holds at most its share; the one past it is answered 429 while others are served (listening on ${host})`,
    TIMEOUT,
    async (t) => {
      let requests = 0;
      let listened: { server: Server; port: number };
      try {
        listened = await listening(
          t,
          {
            maxConnections: 10,
            maxConnectionsPerAddress: 3,
            limitLocalAddresses: true,
            logger: silentLogger,
          },
          () => requests++,
          host,
        );
      } catch (error) {
        // Listening on "::" takes IPv4 connections as ::ffff:127.0.0.2, where IPv6 exists.
        return t.skip(`cannot listen on ${host}: ${(error as Error).message}`);
      }
      const { port } = listened;
      const busy = await Promise.all([1, 2, 3].map(() => open(t, port, "127.0.0.2")));
      for (const client of busy) startSlowPost(client);
      while (requests < 3) await new Promise((resolve) => setTimeout(resolve, 10));

      const pastShare = await open(t, port, "127.0.0.2");
      assert.deepEqual(await refusedWith(pastShare), {
        status: "429",
        code: "too-many-connections-from-address",
      });
      assert.match(pastShare.received(), /retry-after: 1/i);

      // Others are served, up to a share of their own, while the first client holds its share.
      const others = await Promise.all([1, 2, 3].map(() => open(t, port, "127.0.0.3")));
      for (const client of others) {
        client.socket.write(GET);
        assert.deepEqual(await responses(client, 1), [200]);
      }
      for (const client of busy) client.socket.write("{}");
      for (const client of busy) assert.deepEqual(await responses(client, 1), [200]);
    },
  );
}

test(
  "a client's share comes back as its connections close, refused ones included",
  TIMEOUT,
  async (t) => {
    let requests = 0;
    const { server, port } = await listening(
      t,
      {
        maxConnections: 3,
        maxConnectionsPerAddress: 2,
        limitLocalAddresses: true,
        logger: silentLogger,
      },
      () => requests++,
    );
    const first = await open(t, port, "127.0.0.2");
    const other = await Promise.all([1, 2].map(() => open(t, port, "127.0.0.3")));
    for (const client of [first, ...other]) startSlowPost(client);
    while (requests < 3) await new Promise((resolve) => setTimeout(resolve, 10));

    // At the cap (not at its share): refused 503, and the place it was counted for given back.
    const atCap = await open(t, port, "127.0.0.2");
    assert.deepEqual(await refusedWith(atCap), { status: "503", code: "too-many-connections" });
    other[0]!.socket.destroy();
    while ((await connections(server)) > 2) await new Promise((resolve) => setTimeout(resolve, 10));
    const second = await open(t, port, "127.0.0.2");
    second.socket.write(GET);
    assert.deepEqual(await responses(second, 1), [200], "a refusal at the cap took no share");
    const third = await open(t, port, "127.0.0.2");
    assert.deepEqual(await refusedWith(third), {
      status: "429",
      code: "too-many-connections-from-address",
    });

    // Every connection gone: the client's whole share is there again, not a place less.
    for (const client of [first, second, ...other]) client.socket.destroy();
    while ((await connections(server)) > 0) await new Promise((resolve) => setTimeout(resolve, 10));
    const again = await Promise.all([1, 2].map(() => open(t, port, "127.0.0.2")));
    for (const client of again) {
      client.socket.write(GET);
      assert.deepEqual(await responses(client, 1), [200]);
    }
    assert.deepEqual(await refusedWith(await open(t, port, "127.0.0.2")), {
      status: "429",
      code: "too-many-connections-from-address",
    });
  },
);

// A client at its share was refused even when the connections it held were ones it had stopped
// using (a browser or proxy that opens new connections rather than reuse old ones).
test(
  "at its share, a client's own connection idle 15 s makes room, no one else's",
  TIMEOUT,
  async (t) => {
    let time = 1_000_000;
    let requests = 0;
    const { logger, lines } = recordingLogger();
    const { port } = await listening(
      t,
      {
        maxConnections: 10,
        maxConnectionsPerAddress: 2,
        limitLocalAddresses: true,
        logger,
        now: () => time,
      },
      () => requests++,
    );
    const other = await open(t, port, "127.0.0.3");
    other.socket.write(GET);
    assert.deepEqual(await responses(other, 1), [200]);
    const own: Client[] = [];
    for (let i = 0; i < 2; i++) {
      const client = await open(t, port, "127.0.0.2");
      client.socket.write(GET);
      assert.deepEqual(await responses(client, 1), [200]);
      own.push(client);
      time += 1_000;
    }
    // Idle past the 5 s it was told, but not by the margin its own connections get.
    time += 5_000;
    assert.deepEqual(await refusedWith(await open(t, port, "127.0.0.2")), {
      status: "429",
      code: "too-many-connections-from-address",
    });

    // Past the margin: its longest idle connection goes, and the newcomer is served in its place.
    time += 9_000;
    const newcomer = await open(t, port, "127.0.0.2");
    newcomer.socket.write(GET);
    assert.deepEqual(await responses(newcomer, 1), [200]);
    await own[0]!.ended;
    assert.equal(own[0]!.received().match(/HTTP\/1\.1 /g)?.length, 1, "closed without an answer");
    // The other client's connection, idle longer than any, was not touched.
    other.socket.write(GET);
    assert.deepEqual(await responses(other, 2), [200, 200]);
    assert.deepEqual(lines, [
      "warn: a client holds its share of connections: refusing its new ones",
      "info: a client at its share of connections: closing its own longest idle ones to admit its new ones",
    ]);

    // Its connections busy (never idle), it is at its share and refused, however long they take.
    const before = requests;
    for (const client of [own[1]!, newcomer]) startSlowPost(client);
    while (requests < before + 2) await new Promise((resolve) => setTimeout(resolve, 10));
    time += 60_000;
    assert.deepEqual(await refusedWith(await open(t, port, "127.0.0.2")), {
      status: "429",
      code: "too-many-connections-from-address",
    });
    for (const client of [own[1]!, newcomer]) client.socket.write("{}");
    assert.deepEqual(await responses(own[1]!, 2), [200, 200]);
    assert.deepEqual(await responses(newcomer, 2), [200, 200]);
    // The other client's connection, idle for over a minute now, was not closed for that refusal.
    other.socket.write(GET);
    assert.deepEqual(await responses(other, 3), [200, 200, 200]);
  },
);

test("clients on this machine are not held to a share unless asked", TIMEOUT, async (t) => {
  const { port } = await listening(t, {
    maxConnections: 10,
    maxConnectionsPerAddress: 1,
    logger: silentLogger,
  });
  // A reverse proxy on this machine carries every client: its share would cap them all together.
  const clients = await Promise.all([1, 2, 3].map(() => open(t, port)));
  for (const client of clients) {
    client.socket.write(GET);
    assert.deepEqual(await responses(client, 1), [200]);
  }
});
