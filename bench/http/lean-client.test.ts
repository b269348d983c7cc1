// The load generator's lean HTTP client against a node:http server: what it sends, what it reads
// back, how it reuses connections, and that answers it cannot read fail loudly.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createNetServer, type AddressInfo } from "node:net";
import { after, test } from "node:test";
import { LeanHttpClient } from "./lean-client.js";

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

const servers: Server[] = [];
after(() => servers.forEach((server) => server.close()));

async function serve(handler: Handler) {
  const sockets = new Set<unknown>();
  const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => (body += chunk));
    req.on("end", () => handler(req, body, res));
  });
  server.on("connection", (socket) => sockets.add(socket));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, connections: () => sockets.size, server };
}

const echo: Handler = (req, body, res) => {
  const text = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body });
  res.writeHead(req.url === "/missing" ? 404 : 200, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
};

test("sends the method, path, headers and JSON body, and reads status and body back", async () => {
  const { url } = await serve(echo);
  const client = new LeanHttpClient(url, 2);
  try {
    const reply = await client.call(
      "POST",
      "/a/b?c=d",
      { event: "toggle", n: "é" },
      {
        authorization: "Bearer t",
      },
    );
    assert.equal(reply.status, 200);
    const seen = JSON.parse(reply.body) as {
      method: string;
      url: string;
      headers: Record<string, string>;
      body: string;
    };
    assert.equal(seen.method, "POST");
    assert.equal(seen.url, "/a/b?c=d");
    assert.equal(seen.headers.authorization, "Bearer t");
    assert.equal(seen.headers["content-type"], "application/json");
    assert.deepEqual(JSON.parse(seen.body), { event: "toggle", n: "é" });
    assert.equal((await client.call("GET", "/missing")).status, 404);
  } finally {
    client.close();
  }
});

test("keeps at most maxConnections open, reusing them for the requests that wait", async () => {
  let inFlight = 0;
  let most = 0;
  const { url, connections } = await serve((req, body, res) => {
    most = Math.max(most, ++inFlight);
    setTimeout(() => {
      inFlight--;
      echo(req, body, res);
    }, 2);
  });
  const client = new LeanHttpClient(url, 3);
  try {
    const replies = await Promise.all(
      Array.from({ length: 30 }, (_, i) => client.call("POST", `/n/${i}`, { i })),
    );
    replies.forEach((reply, i) => {
      assert.equal(reply.status, 200);
      assert.equal((JSON.parse(reply.body) as { url: string }).url, `/n/${i}`);
    });
    assert.equal(connections(), 3);
    assert.equal(most, 3);
  } finally {
    client.close();
  }
});

test("a connection the server closed is replaced for the next request", async () => {
  const { url, connections, server } = await serve(echo);
  const client = new LeanHttpClient(url, 1);
  try {
    assert.equal((await client.call("GET", "/one")).status, 200);
    server.closeIdleConnections();
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal((await client.call("GET", "/two")).status, 200);
    assert.equal(connections(), 2);
  } finally {
    client.close();
  }
});

test("a request written on a connection closed after its last answer is sent again, once", async () => {
  // A raw server that answers one request per connection and then closes it, without saying
  // `connection: close`: the client's next request, written before it sees the close, is lost.
  let accepted = 0;
  let requests = 0;
  const raw = createNetServer((socket) => {
    accepted++;
    socket.once("data", () => {
      requests++;
      socket.end("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    });
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => raw.listen(0, "127.0.0.1", resolve));
  const { port } = raw.address() as AddressInfo;
  const client = new LeanHttpClient(`http://127.0.0.1:${port}`, 1);
  try {
    // With one connection, the second call is written on the first's connection the moment its
    // answer is read, before the close that follows it is.
    const replies = await Promise.all([client.call("GET", "/1"), client.call("GET", "/2")]);
    assert.deepEqual(
      replies.map((r) => [r.status, r.body]),
      [
        [200, "ok"],
        [200, "ok"],
      ],
    );
    assert.equal(requests, 2, "each request answered once");
    assert.equal(accepted, 2);
  } finally {
    client.close();
    raw.close();
  }
});

test("a request whose fresh connection closes without an answer fails", async () => {
  const raw = createNetServer((socket) => {
    socket.once("data", () => socket.end());
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => raw.listen(0, "127.0.0.1", resolve));
  const { port } = raw.address() as AddressInfo;
  const client = new LeanHttpClient(`http://127.0.0.1:${port}`, 1);
  try {
    await assert.rejects(client.call("GET", "/"), /the server closed the connection/);
  } finally {
    client.close();
    raw.close();
  }
});

test("an answer it cannot read (chunked, no content-length) fails the request", async () => {
  const { url } = await serve((_req, _body, res) => {
    res.write("part");
    res.end("rest");
  });
  const client = new LeanHttpClient(url, 1);
  try {
    await assert.rejects(client.call("GET", "/"), /unsupported answer: HTTP\/1.1 200 OK/);
  } finally {
    client.close();
  }
});
