import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import { Agent, buildConnector, fetch } from "undici";
import { AddressRefusedError } from "./address-kind.js";
import { guardedConnector, type Resolver } from "./guarded-connector.js";

// Stand-ins for addresses on the public internet. Nothing here connects to them: the fake network
// below routes each to a local server.
const PUBLIC_A = "93.184.216.34";
const PUBLIC_B = "2606:2800:220:1:248:1893:25c8:1946";

type Attempt = buildConnector.Options;

/** A connect that records what it was asked and fails (or succeeds) without any network. */
function recordingConnect(fail: (attempt: Attempt) => Error | undefined = () => undefined) {
  const attempts: Attempt[] = [];
  const connect: buildConnector.connector = (options, callback) => {
    attempts.push(options);
    const error = fail(options);
    if (error) callback(error, null);
    else callback(null, { fake: true } as unknown as Socket);
  };
  return { attempts, connect };
}

function connectWith(
  connector: buildConnector.connector,
  target: Partial<Attempt> & { hostname: string },
): Promise<{ error: Error | null; socket: unknown }> {
  return new Promise((resolve) => {
    connector({ protocol: "http:", port: "80", host: target.hostname, ...target }, (...result) =>
      resolve({ error: result[0], socket: result[1] }),
    );
  });
}

function resolverOf(table: Record<string, string[]>): Resolver & { asked: string[] } {
  const asked: string[] = [];
  const resolve = (hostname: string) => {
    asked.push(hostname);
    const addresses = table[hostname];
    if (addresses === undefined) {
      return Promise.reject(Object.assign(new Error(`no ${hostname}`), { code: "ENOTFOUND" }));
    }
    return Promise.resolve(
      addresses.map((address) => ({ address, family: address.includes(":") ? 6 : 4 })),
    );
  };
  return Object.assign(resolve, { asked });
}

function codeOf(error: unknown): unknown {
  return (error as { code?: unknown } | null)?.code;
}

describe("the guarded connector", () => {
  // A connector that never calls back leaves its fetch pending: the timeout makes that a failure.
  test(
    "always answers, exactly once, even when connecting throws or the error is not an Error",
    {
      timeout: 10_000,
    },
    async () => {
      const resolve = resolverOf({ "api.example": [PUBLIC_A] });
      const throwing = guardedConnector({
        resolve,
        connect: () => {
          throw new Error("the connect function threw");
        },
      });
      assert.equal(
        (await connectWith(throwing, { hostname: "api.example" })).error?.message,
        "the connect function threw",
      );

      // A value that throws when converted to text (machine code can shape such things).
      const unprintable = Object.create(null) as object;
      const odd = guardedConnector({
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the point
        resolve: () => Promise.reject(unprintable),
      });
      const { error } = await connectWith(odd, { hostname: "api.example" });
      assert.ok(error instanceof Error);
      assert.equal(error.message, "the connection could not be made");

      let calls = 0;
      const twice = guardedConnector({
        resolve,
        connect: (_options, callback) => {
          callback(null, { fake: true } as unknown as Socket);
          callback(new Error("again"), null);
        },
      });
      await new Promise<void>((done) =>
        twice(
          { protocol: "http:", port: "80", host: "api.example", hostname: "api.example" },
          () => {
            calls++;
            done();
          },
        ),
      );
      await new Promise((wait) => setTimeout(wait, 20));
      assert.equal(calls, 1);
    },
  );

  test("its refusals cannot be reshaped by whoever receives one", () => {
    assert.ok(Object.isFrozen(AddressRefusedError.prototype));
    assert.ok(Object.isFrozen(AddressRefusedError));
  });

  test("refuses non-public IP literals without resolving or connecting", async () => {
    const { attempts, connect } = recordingConnect();
    const resolve = resolverOf({});
    const connector = guardedConnector({ resolve, connect });
    for (const hostname of [
      "127.0.0.1",
      "127.1.2.3",
      "0.0.0.0",
      "10.0.0.1",
      "172.16.0.1",
      "192.168.1.1",
      "100.64.0.1",
      "169.254.169.254",
      "192.0.0.8",
      "198.18.0.1",
      "224.0.0.1",
      "255.255.255.255",
      "::1",
      "[::1]",
      "::",
      "::ffff:7f00:1",
      "::ffff:a9fe:a9fe",
      "::7f00:1",
      "64:ff9b::a9fe:a9fe",
      "2002:7f00:1::1",
      "fd12:3456::1",
      "fe80::1",
      "ff02::1",
    ]) {
      const { error } = await connectWith(connector, { hostname });
      assert.ok(error instanceof AddressRefusedError, `${hostname}: ${String(error)}`);
      assert.equal(error.code, "address-refused");
    }
    assert.deepEqual(attempts, []);
    assert.deepEqual(resolve.asked, []);
  });

  test("connects to a public IP literal as it is", async () => {
    const { attempts, connect } = recordingConnect();
    const connector = guardedConnector({ resolve: resolverOf({}), connect });
    assert.equal((await connectWith(connector, { hostname: PUBLIC_A })).error, null);
    assert.equal((await connectWith(connector, { hostname: PUBLIC_B })).error, null);
    assert.deepEqual(
      attempts.map((attempt) => [attempt.hostname, attempt.servername]),
      [
        [PUBLIC_A, undefined],
        [PUBLIC_B, undefined],
      ],
    );
  });

  test("connects to the checked address of a name, which stays the TLS server name", async () => {
    const { attempts, connect } = recordingConnect();
    const resolve = resolverOf({ "api.example": [PUBLIC_A] });
    const connector = guardedConnector({ resolve, connect });
    const { error } = await connectWith(connector, {
      hostname: "api.example",
      host: "api.example:8443",
      protocol: "https:",
      port: "8443",
    });
    assert.equal(error, null);
    assert.deepEqual(resolve.asked, ["api.example"]);
    assert.equal(attempts.length, 1);
    assert.equal(attempts[0]?.hostname, PUBLIC_A);
    assert.equal(attempts[0]?.servername, "api.example");
    assert.equal(attempts[0]?.host, "api.example:8443");
    assert.equal(attempts[0]?.port, "8443");
  });

  test("refuses a public-looking name that resolves to a non-public address, without its address", async () => {
    const { attempts, connect } = recordingConnect();
    const resolve = resolverOf({
      "metadata.example": ["169.254.169.254"],
      "inside.example": ["10.20.30.40"],
      "loop.example": ["127.0.0.1"],
      "mapped.example": ["::ffff:127.0.0.1"],
      // One bad address is enough: the connection could go to any of them.
      "mixed.example": [PUBLIC_A, "192.168.0.10"],
    });
    const connector = guardedConnector({ resolve, connect, advice: "ask the operator" });
    for (const [hostname, kind, address] of [
      ["metadata.example", "private", "169.254.169.254"],
      ["inside.example", "private", "10.20.30.40"],
      ["loop.example", "loopback", "127.0.0.1"],
      ["mapped.example", "loopback", "127.0.0.1"],
      ["mixed.example", "private", "192.168.0.10"],
    ] as const) {
      const { error } = await connectWith(connector, { hostname });
      assert.ok(error instanceof AddressRefusedError, hostname);
      assert.equal(
        error.message,
        `${hostname} resolves to an address that is not public (ask the operator)`,
      );
      assert.ok(!error.message.includes(address), "the address is not shown");
      assert.ok(!error.message.includes(kind), "nor its kind");
    }
    assert.deepEqual(attempts, []);
  });

  test("tries the checked addresses in turn, and reports the last failure", async () => {
    const refused = (attempt: Attempt) =>
      attempt.hostname === PUBLIC_B
        ? Object.assign(new Error("no route"), { code: "ENETUNREACH" })
        : undefined;
    const first = recordingConnect(refused);
    const resolve = resolverOf({ "dual.example": [PUBLIC_B, PUBLIC_A] });
    const { error } = await connectWith(guardedConnector({ resolve, connect: first.connect }), {
      hostname: "dual.example",
    });
    assert.equal(error, null);
    assert.deepEqual(
      first.attempts.map((attempt) => attempt.hostname),
      [PUBLIC_B, PUBLIC_A],
    );

    const all = recordingConnect((attempt) => new Error(`down: ${attempt.hostname}`));
    const failed = await connectWith(guardedConnector({ resolve, connect: all.connect }), {
      hostname: "dual.example",
    });
    assert.equal(failed.error?.message, `down: ${PUBLIC_A}`);
    assert.equal(all.attempts.length, 2);
  });

  test("passes on resolver failures, and a name without addresses is not found", async () => {
    const { attempts, connect } = recordingConnect();
    const resolve = resolverOf({ "empty.example": [] });
    const connector = guardedConnector({ resolve, connect });
    const missing = await connectWith(connector, { hostname: "missing.example" });
    assert.equal(codeOf(missing.error), "ENOTFOUND");
    const empty = await connectWith(connector, { hostname: "empty.example" });
    assert.equal(codeOf(empty.error), "ENOTFOUND");
    assert.deepEqual(attempts, []);
  });

  test("refuses Unix sockets", async () => {
    const { attempts, connect } = recordingConnect();
    const connector = guardedConnector({ resolve: resolverOf({}), connect });
    const { error } = await connectWith(connector, {
      hostname: PUBLIC_A,
      socketPath: "/run/docker.sock",
    });
    assert.ok(error instanceof AddressRefusedError);
    assert.deepEqual(attempts, []);
  });
});

/** A local HTTP server that counts connections as well as requests. */
async function countingServer(
  handle: (
    path: string,
    respond: (status: number, headers: Record<string, string>) => void,
  ) => void,
): Promise<{ server: Server; port: number; connections: number; requests: string[] }> {
  const state = { connections: 0, requests: [] as string[] };
  const server = createServer((request, response) => {
    state.requests.push(request.url ?? "");
    handle(request.url ?? "", (status, headers) => {
      response.writeHead(status, headers).end(`answered ${request.url}`);
    });
  });
  server.on("connection", () => state.connections++);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(state, { server, port });
}

describe("fetch through the guard (undici, a fake public network)", () => {
  let secret: Awaited<ReturnType<typeof countingServer>>;
  let site: Awaited<ReturnType<typeof countingServer>>;
  let target = "";

  before(async () => {
    secret = await countingServer((_path, respond) => respond(200, {}));
    site = await countingServer((path, respond) => {
      if (path === "/redirect") respond(302, { location: target });
      // A new connection for every request, so each one is checked again.
      else respond(200, { connection: "close" });
    });
  });
  after(async () => {
    await new Promise((resolve) => secret.server.close(resolve));
    await new Promise((resolve) => site.server.close(resolve));
  });

  /**
   * An agent whose guard sees `table` as DNS, and whose connections to PUBLIC_A actually reach the
   * local "site" server. Any other address is connected to for real: were the guard to let a
   * loopback address through, the secret server would count it.
   */
  function agentWith(table: Record<string, string[]> | Resolver): Agent {
    const real = buildConnector({});
    const connect: buildConnector.connector = (options, callback) =>
      real(
        options.hostname === PUBLIC_A
          ? { ...options, hostname: "127.0.0.1", port: String(site.port) }
          : options,
        callback,
      );
    const resolve = typeof table === "function" ? table : resolverOf(table);
    return new Agent({ connect: guardedConnector({ resolve, connect }) });
  }

  async function refusal(promise: Promise<unknown>): Promise<Error> {
    try {
      await promise;
    } catch (error) {
      assert.ok(error instanceof TypeError, String(error));
      assert.equal(error.message, "fetch failed");
      assert.ok(error.cause instanceof AddressRefusedError, String(error.cause));
      return error.cause;
    }
    throw new Error("expected the fetch to fail");
  }

  test("a public name gets through", async () => {
    const dispatcher = agentWith({ "site.example": [PUBLIC_A] });
    const response = await fetch("http://site.example/hello", { dispatcher });
    assert.equal(await response.text(), "answered /hello");
    await dispatcher.close();
  });

  test("a redirect to a loopback URL is refused before the request is sent", async () => {
    const dispatcher = agentWith({ "site.example": [PUBLIC_A], localhost: ["127.0.0.1"] });
    const before = site.requests.length;
    for (const location of [
      `http://127.0.0.1:${secret.port}/secret`,
      `http://localhost:${secret.port}/secret`,
      `http://[::ffff:127.0.0.1]:${secret.port}/secret`,
      `http://[::1]:${secret.port}/secret`,
      `http://0.0.0.0:${secret.port}/secret`,
    ]) {
      target = location;
      await refusal(fetch("http://site.example/redirect", { dispatcher }));
    }
    assert.equal(site.requests.length, before + 5, "each redirect was served");
    assert.equal(secret.connections, 0);
    assert.deepEqual(secret.requests, []);
    await dispatcher.close();
  });

  test("a name that resolves to a public address, then to loopback (rebinding), is refused the second time", async () => {
    let answers = 0;
    const rebinding: Resolver = () => {
      answers++;
      return Promise.resolve([{ address: answers === 1 ? PUBLIC_A : "127.0.0.1", family: 4 }]);
    };
    const dispatcher = agentWith(rebinding);
    const url = `http://rebind.example:${secret.port}/`;
    assert.equal(await (await fetch(url, { dispatcher })).text(), "answered /");
    const cause = await refusal(fetch(url, { dispatcher }));
    assert.match(cause.message, /rebind\.example resolves to an address that is not public/);
    assert.equal(answers, 2);
    assert.equal(secret.connections, 0);
    await dispatcher.close();
  });
});
