// Machine code's fetch from a real sandbox process: by default it reaches public addresses only,
// so a tenant cannot use it against the server's own network (server-side request forgery); with
// the operator's allowPrivateNetworkFetch it reaches local services too. Every server here is
// local, so the default's positive case (a public address) is in net/guarded-connector.test.ts.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { SandboxPool } from "../../src/runtime/sandbox-pool.js";
import { callExport, memoryLogger, target, TEST_ADAPTER } from "./sandbox-helpers.js";

const FETCHER = `
export default { id: "fetcher" };

const describe = (error) => ({
  ok: false,
  name: error?.name,
  message: error?.message,
  cause: error?.cause?.message ?? null,
  causeCode: error?.cause?.code ?? null,
});

export async function get(url, method = "GET") {
  try {
    const init = method === "GET" ? undefined : { method, body: "from the machine" };
    const response = await fetch(url, init);
    return { ok: true, status: response.status, text: await response.text(), isResponse: response instanceof Response };
  } catch (error) {
    return describe(error);
  }
}

export async function getRequest(url) {
  try {
    return { ok: true, status: (await fetch(new Request(url, { headers: { "x-a": "1" } }))).status };
  } catch (error) {
    return describe(error);
  }
}

// A dispatcher of the machine's own, in init or in a Request, is not the one used.
export async function ownDispatcher(url) {
  let asked = 0;
  const dispatcher = { dispatch() { asked++; return true; } };
  const outcomes = [];
  for (const attempt of [() => fetch(url, { dispatcher }), () => fetch(new Request(url, { dispatcher }))]) {
    try {
      await attempt();
      outcomes.push("fetched");
    } catch (error) {
      outcomes.push(describe(error).causeCode ?? describe(error).message);
    }
  }
  return { asked, outcomes };
}

// The errors of a failed fetch, and of a body cut short, with their causes: each cause is of a
// class of Node's or undici's, one for the whole process.
async function failures(urls) {
  const found = [];
  for (const url of urls) {
    const error = await fetch(url).then((response) => response.text()).then(() => null, (error) => error);
    if (error === null) throw new Error("fetched " + url);
    found.push(error);
  }
  return found;
}

export async function patchFailures(urls) {
  const result = [];
  for (const error of await failures(urls)) {
    for (let value = error; value != null; value = value.cause) {
      for (let prototype = Object.getPrototypeOf(value); prototype !== null; prototype = Object.getPrototypeOf(prototype)) {
        try { prototype.polluted = "yes"; result.push("written"); } catch (error) { result.push("refused"); }
      }
    }
  }
  return result;
}

export async function failurePollution(urls) {
  return (await failures(urls)).map((error) => [error.polluted ?? null, error.cause?.polluted ?? null]);
}

export async function webClasses() {
  const fromData = await fetch(new Request("data:text/plain,hello"));
  const headers = new Headers({ "X-One": "1" });
  headers.append("x-two", "2");
  const form = new FormData();
  form.append("a", "b");
  const made = new Response(form);
  const json = Response.json({ a: 1 });
  return {
    text: await fromData.text(),
    isResponse: fromData instanceof Response,
    headers: [...headers].map(([name, value]) => name + "=" + value),
    formType: (made.headers.get("content-type") ?? "").split(";")[0],
    json: await json.json(),
    cloned: await new Request("https://example.com/", { method: "POST", body: "x" }).clone().text(),
    badInit: await fetch("data:,x", 5).then(() => "fetched", (error) => error.name),
    aborted: await fetch("data:,x", { signal: AbortSignal.abort() }).then(() => "fetched", (error) => error.name),
  };
}
`;

/** A local HTTP server on every interface (IPv4 and IPv6) that counts what reaches it. */
class Stub {
  readonly requests: string[] = [];
  connections = 0;
  port = 0;
  readonly #server: Server = createServer((request, response) => {
    if (request.url === "/reset") {
      request.socket.destroy();
      return;
    }
    if (request.url === "/cut") {
      response.writeHead(200, { "content-length": "100" });
      response.write("only part of it", () => request.socket.destroy());
      return;
    }
    let body = "";
    request.on("data", (chunk: Buffer) => (body += chunk.toString()));
    request.on("end", () => {
      this.requests.push(`${request.method} ${request.url} ${body}`.trim());
      response.end("internal data");
    });
  });

  async start(): Promise<void> {
    this.#server.on("connection", () => this.connections++);
    await new Promise<void>((resolve) => this.#server.listen(0, "::", resolve));
    this.port = (this.#server.address() as AddressInfo).port;
  }

  stop(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

type Outcome = {
  ok: boolean;
  status?: number;
  text?: string;
  isResponse?: boolean;
  name?: string;
  message?: string;
  cause?: string | null;
  causeCode?: string | null;
};

describe("machine code's fetch", () => {
  const stub = new Stub();
  let guarded: SandboxPool;
  let open: SandboxPool;
  const fetcher = target("org_fetch", FETCHER);
  const openFetcher = target("org_fetch", FETCHER);
  const localUrls = () => [
    `http://127.0.0.1:${stub.port}/a`,
    `http://localhost:${stub.port}/b`,
    `http://[::1]:${stub.port}/c`,
    `http://[::ffff:127.0.0.1]:${stub.port}/d`,
    `http://0.0.0.0:${stub.port}/e`,
    `http://2130706433:${stub.port}/f`,
  ];

  before(async () => {
    await stub.start();
    const options = { adapterPath: TEST_ADAPTER, size: 1, logger: memoryLogger() };
    guarded = new SandboxPool(options);
    open = new SandboxPool({ ...options, allowPrivateNetworkFetch: true });
  });
  after(async () => {
    await Promise.all([guarded.close(), open.close()]);
    await stub.stop();
  });

  test("by default, refuses local addresses as a network failure, and sends nothing", async () => {
    for (const url of localUrls()) {
      for (const method of ["GET", "POST"]) {
        const outcome = (await callExport(guarded, fetcher, "get", [url, method])) as Outcome;
        assert.equal(outcome.ok, false, url);
        assert.equal(outcome.name, "TypeError", url);
        assert.equal(outcome.message, "fetch failed", url);
        assert.equal(outcome.causeCode, "address-refused", url);
        // An IP literal's kind may be named (the machine wrote it); a name's never is.
        assert.match(
          outcome.cause ?? "",
          /is a (loopback|private) address|resolves to an address that is not public/,
          url,
        );
        assert.match(outcome.cause ?? "", /unless the operator allows private ones/, url);
      }
      const request = (await callExport(guarded, fetcher, "getRequest", [url])) as Outcome;
      assert.equal(request.causeCode, "address-refused", url);
    }
    assert.deepEqual(stub.requests, []);
    assert.equal(stub.connections, 0);
  });

  test("does not show what a name resolves to", async () => {
    const outcome = (await callExport(guarded, fetcher, "get", [
      `http://localhost:${stub.port}/`,
    ])) as Outcome;
    assert.match(outcome.cause ?? "", /^localhost resolves to an address that is not public/);
    assert.doesNotMatch(outcome.cause ?? "", /loopback/);
    assert.doesNotMatch(outcome.cause ?? "", /127\.0\.0\.1|::1/);
  });

  test("ignores a dispatcher the machine brings", async () => {
    const result = (await callExport(guarded, fetcher, "ownDispatcher", [
      `http://127.0.0.1:${stub.port}/own`,
    ])) as { asked: number; outcomes: string[] };
    assert.deepEqual(result, { asked: 0, outcomes: ["address-refused", "address-refused"] });
    assert.deepEqual(stub.requests, []);
  });

  test("data: URLs and fetch's classes work as before", async () => {
    assert.deepEqual(await callExport(guarded, fetcher, "webClasses"), {
      text: "hello",
      isResponse: true,
      headers: ["x-one=1", "x-two=2"],
      formType: "multipart/form-data",
      json: { a: 1 },
      cloned: "x",
      badInit: "TypeError",
      aborted: "AbortError",
    });
  });

  test("with allowPrivateNetworkFetch, local services are reached", async () => {
    const before = stub.requests.length;
    const reached = localUrls().slice(0, 4);
    for (const url of reached) {
      const outcome = (await callExport(open, openFetcher, "get", [url, "POST"])) as Outcome;
      assert.deepEqual(
        outcome,
        { ok: true, status: 200, text: "internal data", isResponse: true },
        url,
      );
    }
    assert.deepEqual(stub.requests.slice(before), [
      "POST /a from the machine",
      "POST /b from the machine",
      "POST /c from the machine",
      "POST /d from the machine",
    ]);
  });

  test("the classes of fetch's failures cannot be patched for other versions", async () => {
    const closed = new Stub();
    await closed.start();
    const urls = [
      `http://127.0.0.1:${closed.port}/`,
      `http://127.0.0.1:${stub.port}/reset`,
      `http://127.0.0.1:${stub.port}/cut`,
    ];
    await closed.stop();
    const attacker = target("org_fetch", FETCHER);
    const victim = target("org_fetch", FETCHER);
    const results = (await callExport(open, attacker, "patchFailures", [urls])) as string[];
    assert.ok(results.length >= 12, String(results.length));
    assert.deepEqual(
      results.filter((result) => result !== "refused"),
      [],
    );
    assert.deepEqual(await callExport(open, victim, "failurePollution", [urls]), [
      [null, null],
      [null, null],
      [null, null],
    ]);
  });

  test("a refusal looks like any other network failure", async () => {
    const closed = new Stub();
    await closed.start();
    const url = `http://127.0.0.1:${closed.port}/`;
    await closed.stop();
    const failure = (await callExport(open, openFetcher, "get", [url])) as Outcome;
    const refused = (await callExport(guarded, fetcher, "get", [url])) as Outcome;
    assert.equal(failure.causeCode, "ECONNREFUSED");
    assert.equal(refused.causeCode, "address-refused");
    assert.deepEqual(
      { ...failure, cause: null, causeCode: null },
      { ...refused, cause: null, causeCode: null },
    );
  });
});
