// Inputs at the edges of what commands accept: each must end in a plain message and the exit
// code the README gives, never a stack trace, and what can be sent must reach the server intact.
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { FIXTURES, backstate, tempDir } from "./support/cli.js";

const TIMEOUT = { timeout: 60_000 };

test(
  "tokens generate with an expiry past the last date refuses it (exit 2), no stack trace",
  TIMEOUT,
  async () => {
    const result = await backstate([
      "tokens",
      "generate",
      "--key",
      "sbk_nXzdtCxESemgtxS5JX-LrA",
      "--secret",
      "sbsec_secret",
      "--claims",
      '{"sub":"alice"}',
      "--expires",
      "300000y",
    ]);
    assert.equal(result.code, 2, result.stderr);
    assert.equal(result.stdout, "");
    assert.match(result.stderr, /^backstate: .*--expires/);
    assert.doesNotMatch(result.stderr, /\n\s+at /, "no stack trace");
  },
);

test(
  "--auth-context with characters beyond Latin-1 reaches the server as the same JSON",
  TIMEOUT,
  async (t) => {
    const seen: IncomingHttpHeaders[] = [];
    const fake = createServer((request, response) => {
      seen.push(request.headers);
      response.writeHead(200, { "content-type": "application/json" });
      response.end(
        JSON.stringify({ state: "on", publicContext: {}, tags: [], done: false, ts: 1 }),
      );
    });
    await new Promise<void>((resolve) => fake.listen(0, "127.0.0.1", resolve));
    t.after(() => fake.close());
    const { port } = fake.address() as AddressInfo;
    const authContext = { sub: "日本-ユーザー", name: "José 😀" };
    const result = await backstate(
      [
        "instances",
        "get",
        "-m",
        "lamp",
        "-i",
        "alice",
        "--auth-context",
        JSON.stringify(authContext),
        "--json",
      ],
      { env: { BACKSTATE_API_URL: `http://127.0.0.1:${port}`, BACKSTATE_TOKEN: "t" } },
    );
    assert.equal(result.code, 0, result.stderr);
    const header = seen[0]?.["x-statebacked-act"];
    assert.equal(typeof header, "string");
    assert.deepEqual(JSON.parse(header as string), authContext);
  },
);

test(
  "machine-versions check --out to a folder that does not exist: a plain message, exit 2",
  TIMEOUT,
  async (t) => {
    const dir = tempDir(t);
    const result = await backstate([
      "machine-versions",
      "check",
      "--file",
      join(FIXTURES, "toggle.ts"),
      "--out",
      join(dir, "missing", "bundle.js"),
    ]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /^backstate: cannot write the bundle to .*bundle\.js/);
    assert.doesNotMatch(result.stderr, /\n\s+at /, "no stack trace");
  },
);

test(
  "a --token no HTTP header can carry is a usage error (2), not 'cannot reach'",
  TIMEOUT,
  async () => {
    const result = await backstate([
      "machines",
      "list",
      "--api-url",
      "http://127.0.0.1:9",
      "--token",
      "abc→def",
    ]);
    assert.equal(result.code, 2, result.stderr);
    assert.doesNotMatch(result.stderr, /cannot reach/);
  },
);

test("a refused --token or BACKSTATE_TOKEN is not repeated in the message", TIMEOUT, async () => {
  // A secret pasted almost right ("Bearer …", a stray space) must not end up in a terminal or
  // CI log by way of the error that refuses it.
  const secret = "Bearer eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.sig";
  for (const [args, env] of [
    [["--token", secret], {}],
    [[], { BACKSTATE_TOKEN: secret }],
  ] as const) {
    const result = await backstate(
      ["machines", "list", "--api-url", "http://127.0.0.1:9", ...args],
      { env },
    );
    assert.equal(result.code, 2, result.stderr);
    assert.doesNotMatch(result.stderr, /eyJhbGciOiJIUzI1NiJ9/);
    assert.match(result.stderr, /token/);
  }
});
