// `backstate serve` as a user runs it: a child process on a free port with its own data dir.
import assert from "node:assert/strict";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { randomBytes } from "node:crypto";
import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { openSqliteStore } from "@backstate/server";
import { signToken } from "@backstate/token";
import { call, deploy, REPO_ROOT, runCli, serve, served, stop, tempDir } from "./support/cli.js";

type Credentials = { apiUrl: string; orgId: string; adminToken: string };

function readCredentials(path: string): Credentials {
  return JSON.parse(readFileSync(path, "utf8")) as Credentials;
}

const TIMEOUT = { timeout: 60_000 };

/** A server on `dataDir` with `machine` deployed from `code` and its instance "one" created. */
async function serveWithInstance(t: TestContext, dataDir: string, machine: string, code: string) {
  const server = await serve(dataDir);
  t.after(() => server.child.kill("SIGKILL"));
  const { adminToken: token, orgId } = readCredentials(server.credentialsPath);
  await deploy(server.url, { token, orgId }, machine, code);
  const created = await call(server.url, token, "POST", `/machines/${machine}`, {
    orgId,
    body: { slug: "one" },
  });
  assert.equal(created.status, 200, JSON.stringify(created));
  return { server, token, orgId };
}

test(
  "first start: prints the URL, writes credentials.json (0600) whose token lists the org",
  TIMEOUT,
  async (t) => {
    const dataDir = tempDir(t);
    const server = await serve(dataDir);
    t.after(() => server.child.kill("SIGKILL"));

    assert.equal(server.credentialsPath, join(dataDir, "credentials.json"));
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(statSync(server.credentialsPath).mode & 0o777, 0o600);
    const credentials = readCredentials(server.credentialsPath);
    assert.deepEqual(Object.keys(credentials).sort(), ["adminToken", "apiUrl", "orgId"]);
    assert.equal(credentials.apiUrl, server.url);
    assert.match(credentials.orgId, /^org_/);
    assert.ok(!server.stdout().includes(credentials.adminToken), "the token is not printed");
    assert.ok(!server.stderr().includes(credentials.adminToken), "the token is not logged");
    for (const line of server.stderr().trim().split("\n")) {
      assert.doesNotThrow(() => JSON.parse(line), `a JSON log line: ${line}`);
    }

    const orgs = await call(server.url, credentials.adminToken, "GET", "/orgs");
    assert.equal(orgs.status, 200);
    const listed = (orgs.body as { orgs: { id: string }[] }).orgs.map((org) => org.id);
    assert.deepEqual(listed, [credentials.orgId]);

    assert.deepEqual(await stop(server), { code: 0, signal: null });
  },
);

test(
  "a restart that keeps the credentials file puts back its owner-only mode",
  TIMEOUT,
  async (t) => {
    const dataDir = tempDir(t);
    // The same public URL both times: the file is kept as it is, not written again.
    const args = ["--public-url", "https://backstate.example.test"];
    const first = await serve(dataDir, args);
    assert.deepEqual(await stop(first), { code: 0, signal: null });
    chmodSync(first.credentialsPath, 0o644);
    const second = await serve(dataDir, args);
    t.after(() => second.child.kill("SIGKILL"));
    assert.equal(statSync(second.credentialsPath).mode & 0o777, 0o600);
    assert.deepEqual(await stop(second), { code: 0, signal: null });
  },
);

test(
  "restarts reuse the org and token; a lost credentials file gets a new token",
  TIMEOUT,
  async (t) => {
    const dataDir = tempDir(t);
    const first = await serve(dataDir);
    const before = readCredentials(first.credentialsPath);
    assert.deepEqual(await stop(first), { code: 0, signal: null });

    const second = await serve(dataDir);
    t.after(() => second.child.kill("SIGKILL"));
    const after = readCredentials(second.credentialsPath);
    assert.equal(after.orgId, before.orgId);
    assert.equal(after.adminToken, before.adminToken);
    assert.equal(after.apiUrl, second.url, "apiUrl follows the new port");
    assert.equal(statSync(second.credentialsPath).mode & 0o777, 0o600);
    assert.equal((await call(second.url, after.adminToken, "GET", "/orgs")).status, 200);
    assert.deepEqual(await stop(second), { code: 0, signal: null });

    rmSync(second.credentialsPath);
    const third = await serve(dataDir, ["--show-token"]);
    t.after(() => third.child.kill("SIGKILL"));
    const minted = readCredentials(third.credentialsPath);
    assert.equal(minted.orgId, before.orgId);
    assert.notEqual(minted.adminToken, before.adminToken);
    assert.ok(third.stdout().includes(minted.adminToken), "--show-token prints it");
    const orgs = await call(third.url, minted.adminToken, "GET", "/orgs");
    assert.deepEqual(
      (orgs.body as { orgs: { id: string }[] }).orgs.map((org) => org.id),
      [before.orgId],
    );
    assert.deepEqual(await stop(third), { code: 0, signal: null });
  },
);

// A machine whose "work" event runs a promise service for a while; the request waits for it.
const SLOW_MACHINE = `
import { assign, createMachine, fromPromise } from "xstate";
export default createMachine({
  initial: "idle",
  context: { public: { done: 0 } },
  states: {
    idle: { on: { work: "working" } },
    working: {
      invoke: {
        src: fromPromise(() => new Promise((resolve) => setTimeout(resolve, 2000))),
        onDone: {
          target: "idle",
          actions: assign({ public: ({ context }) => ({ done: context.public.done + 1 }) }),
        },
      },
    },
  },
});
export const allowRead = () => true;
export const allowWrite = () => true;
`;

test(
  "SIGTERM lets an event in flight finish, exits 0, and the data survives",
  TIMEOUT,
  async (t) => {
    const dataDir = tempDir(t);
    const { server, token, orgId } = await serveWithInstance(t, dataDir, "slow", SLOW_MACHINE);

    let repliedAt = 0;
    const inFlight = call(server.url, token, "POST", "/machines/slow/i/one/events", {
      orgId,
      body: { event: { type: "work" } },
    }).finally(() => (repliedAt = Date.now()));
    // The event is in flight once the instance is seen in "working" (its service running).
    for (;;) {
      const seen = await call(server.url, token, "GET", "/machines/slow/i/one", { orgId });
      if ((seen.body as { state?: unknown }).state === "working") break;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const signalledAt = Date.now();
    server.child.kill("SIGTERM");

    const reply = await inFlight;
    assert.ok(repliedAt > signalledAt, "the reply came after the signal");
    assert.equal(reply.status, 200, JSON.stringify(reply));
    assert.deepEqual(reply.body, {
      ...(reply.body as object),
      state: "idle",
      publicContext: { done: 1 },
    });
    assert.deepEqual(await server.exited, { code: 0, signal: null });
    assert.match(server.stderr(), /"message":"stopped"/);

    const again = await serve(dataDir);
    t.after(() => again.child.kill("SIGKILL"));
    const read = await call(again.url, token, "GET", "/machines/slow/i/one", { orgId });
    assert.equal(read.status, 200, JSON.stringify(read));
    assert.deepEqual((read.body as { publicContext: unknown }).publicContext, { done: 1 });
    assert.deepEqual(await stop(again), { code: 0, signal: null });
  },
);

/** A database no test reaches: the values beside it are refused before it would be. */
const POSTGRES = ["--database-url", "postgres://127.0.0.1:1/none"];

test("bad flags and values exit 2 with a message", TIMEOUT, async (t) => {
  const dataDir = tempDir(t);
  const cases: { args: string[]; env?: NodeJS.ProcessEnv; message: RegExp }[] = [
    { args: ["--port", "abc"], message: /--port.*'abc' is invalid.*port number/ },
    { args: ["--port", "70000"], message: /--port.*'70000' is invalid/ },
    { args: ["--port", "-1"], message: /--port.*is invalid/ },
    { args: ["--public-url", "not a url"], message: /--public-url.*is invalid/ },
    { args: ["--host", ""], message: /--host.*is invalid/ },
    { args: ["--bogus"], message: /unknown option '--bogus'/ },
    { args: ["extra"], message: /too many arguments/ },
    { args: [], env: { BACKSTATE_PORT: "http" }, message: /from env 'BACKSTATE_PORT' is invalid/ },
    { args: ["--settle-timeout", "0"], message: /--settle-timeout.*'0' is invalid.*milliseconds/ },
    { args: ["--settle-timeout", "1.5"], message: /--settle-timeout.*is invalid/ },
    { args: ["--settle-timeout", "2147483648"], message: /--settle-timeout.*is invalid/ },
    { args: ["--instance-cache-size", "-1"], message: /--instance-cache-size.*is invalid/ },
    { args: ["--instance-cache-size", "many"], message: /--instance-cache-size.*is invalid/ },
    { args: ["--service-lease", "999"], message: /--service-lease.*'999' is invalid/ },
    {
      args: ["--shutdown-delay", "-1"],
      message: /--shutdown-delay.*'-1' is invalid.*milliseconds/,
    },
    { args: ["--shutdown-delay", "600001"], message: /--shutdown-delay.*'600001' is invalid/ },
    {
      args: [],
      env: { BACKSTATE_SHUTDOWN_DELAY_MS: "soon" },
      message: /from env 'BACKSTATE_SHUTDOWN_DELAY_MS' is invalid/,
    },
    {
      args: ["--realtime-token-grace", "-1"],
      message: /--realtime-token-grace.*'-1' is invalid.*seconds/,
    },
    { args: ["--realtime-token-grace", "1.5"], message: /--realtime-token-grace.*is invalid/ },
    { args: ["--realtime-token-grace", "1d"], message: /--realtime-token-grace.*is invalid/ },
    {
      args: [],
      env: { BACKSTATE_REALTIME_TOKEN_GRACE_SECONDS: "a day" },
      message: /from env 'BACKSTATE_REALTIME_TOKEN_GRACE_SECONDS' is invalid/,
    },
    {
      args: ["--max-connections", "0"],
      message: /--max-connections.*'0' is invalid.*number of connections/,
    },
    { args: ["--max-connections", "lots"], message: /--max-connections.*is invalid/ },
    {
      args: [],
      env: { BACKSTATE_MAX_CONNECTIONS: "unlimited" },
      message: /from env 'BACKSTATE_MAX_CONNECTIONS' is invalid/,
    },
    {
      args: ["--max-connections-per-address", "-1"],
      message: /--max-connections-per-address.*'-1' is invalid.*number of connections.*0: no limit/,
    },
    {
      args: ["--max-connections-per-address", "1.5"],
      message: /--max-connections-per-address.*is invalid/,
    },
    {
      args: [],
      env: { BACKSTATE_MAX_CONNECTIONS_PER_ADDRESS: "a quarter" },
      message: /from env 'BACKSTATE_MAX_CONNECTIONS_PER_ADDRESS' is invalid/,
    },
    {
      args: [],
      env: { BACKSTATE_ALLOW_PRIVATE_FETCH: "maybe" },
      message: /BACKSTATE_ALLOW_PRIVATE_FETCH must be on .* or off .*, not 'maybe'/,
    },
    {
      args: [],
      env: { BACKSTATE_SERVICE_LEASE_MS: "soon" },
      message: /from env 'BACKSTATE_SERVICE_LEASE_MS' is invalid/,
    },
    // At least 2: a commit waiting for a held row keeps a connection while the rest commit.
    {
      args: [...POSTGRES, "--database-pool-size", "1"],
      message: /--database-pool-size.*'1' is invalid.*number of connections.*from 2 to 1,000/,
    },
    {
      args: [...POSTGRES, "--database-pool-size", "1001"],
      message: /--database-pool-size.*is invalid/,
    },
    {
      args: [...POSTGRES, "--database-pool-size", "2.5"],
      message: /--database-pool-size.*is invalid/,
    },
    {
      args: POSTGRES,
      env: { BACKSTATE_DATABASE_POOL_SIZE: "ten" },
      message: /from env 'BACKSTATE_DATABASE_POOL_SIZE' is invalid/,
    },
    // SQLite has no pool.
    {
      args: ["--database-pool-size", "4"],
      message: /--database-pool-size \(BACKSTATE_DATABASE_POOL_SIZE\) needs --database-url/,
    },
    {
      args: [],
      env: { BACKSTATE_DATABASE_POOL_SIZE: "4" },
      message: /--database-pool-size \(BACKSTATE_DATABASE_POOL_SIZE\) needs --database-url/,
    },
  ];
  for (const { args, env, message } of cases) {
    const cli = runCli(["serve", "--data-dir", dataDir, ...args], env);
    const exit = await cli.exited;
    assert.deepEqual(exit, { code: 2, signal: null }, `${args.join(" ")}: ${cli.stderr()}`);
    assert.match(cli.stderr(), message);
  }
  const unknown = runCli(["launch"]);
  assert.equal((await unknown.exited).code, 2);
  assert.match(unknown.stderr(), /unknown command 'launch'/);
  assert.ok(!existsSync(join(dataDir, "backstate.db")), "nothing was started");
});

test(
  "a data dir that cannot be used exits 1 with a clear message, not a stack trace",
  TIMEOUT,
  async (t) => {
    const notADatabase = tempDir(t);
    writeFileSync(join(notADatabase, "backstate.db"), "these are not the bytes of a database\n");
    const aFile = join(tempDir(t), "a-file");
    writeFileSync(aFile, "");
    // A database a newer server has migrated: one migration more than this server knows.
    const newer = tempDir(t);
    const known = join(REPO_ROOT, "packages", "server", "src", "store", "sqlite", "migrations");
    const future = tempDir(t);
    const names = readdirSync(known).filter((name) => name.endsWith(".sql"));
    for (const name of names) copyFileSync(join(known, name), join(future, name));
    const next = String(names.length + 1).padStart(4, "0");
    writeFileSync(join(future, `${next}-future.sql`), "CREATE TABLE future (id INTEGER)");
    const store = openSqliteStore({ path: join(newer, "backstate.db"), migrationsDir: future });
    await store.migrate();
    await store.close();
    // The credentials file the server keeps there cannot be read (here: it is a folder).
    const credentialsFolder = tempDir(t);
    mkdirSync(join(credentialsFolder, "credentials.json"));

    const cases: [dataDir: string, message: RegExp][] = [
      [notADatabase, /cannot use the data dir .*: .*backstate\.db.*not a database/],
      [credentialsFolder, /cannot use the credentials file .*credentials\.json: EISDIR/],
      [aFile, /cannot use the data dir .*a-file/],
      [newer, new RegExp(`migration ${next}, unknown to this server.*upgrade Backstate`)],
    ];
    for (const [dataDir, message] of cases) {
      const cli = runCli(["serve", "--port", "0", "--data-dir", dataDir]);
      assert.deepEqual(await cli.exited, { code: 1, signal: null }, cli.stderr());
      assert.match(cli.stderr(), message);
      assert.doesNotMatch(cli.stderr(), /\n\s+at /, `no stack trace: ${cli.stderr()}`);
    }
  },
);

// Behind a load balancer, a node that stopped taking connections at the signal refused the
// requests the balancer still sent it until its health check noticed.
test(
  "with --shutdown-delay, a signal drains first: /healthz answers 503 while the node still serves, then it stops",
  TIMEOUT,
  async (t) => {
    const server = await serve(tempDir(t), ["--shutdown-delay", "4000"]);
    t.after(() => server.child.kill("SIGKILL"));
    const { adminToken } = readCredentials(server.credentialsPath);
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    const signalled = Date.now();
    server.child.kill("SIGTERM");
    let health = await fetch(`${server.url}/healthz`);
    while (health.status === 200) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      health = await fetch(`${server.url}/healthz`);
    }
    assert.equal(health.status, 503);
    assert.equal(((await health.json()) as { code: string }).code, "shutting-down");
    // Still serving while the delay runs, on a new connection too (not one fetch kept open).
    const onNewConnection = await new Promise<number>((resolve, reject) => {
      const asked = request(
        `${server.url}/orgs`,
        { agent: false, headers: { authorization: `Bearer ${adminToken}` } },
        (answer) => {
          answer.resume();
          resolve(answer.statusCode ?? 0);
        },
      );
      asked.once("error", reject);
      asked.end();
    });
    assert.equal(onNewConnection, 200);
    assert.deepEqual(await server.exited, { code: 0, signal: null });
    assert.ok(Date.now() - signalled >= 4000, "it served on for the whole delay");
  },
);

test("a port in use fails with a clear message", TIMEOUT, async (t) => {
  const first = await serve(tempDir(t));
  t.after(() => first.child.kill("SIGKILL"));
  const port = new URL(first.url).port;
  const second = runCli(["serve", "--port", port, "--data-dir", tempDir(t)]);
  assert.equal((await second.exited).code, 1);
  assert.match(second.stderr(), /cannot listen on 127\.0\.0\.1:\d+: the port is in use/);
  assert.deepEqual(await stop(first), { code: 0, signal: null });
});

// An unreachable database ended the start with a stack trace, the error's class name and no hint.
test(
  "a PostgreSQL database it cannot use fails with a clear message, its password not shown",
  TIMEOUT,
  async (t) => {
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    const refused = runCli([
      "serve",
      "--port",
      "0",
      "--data-dir",
      tempDir(t),
      "--database-url",
      "postgres://someone:s3cret-pass@127.0.0.1:1/somedb",
    ]);
    assert.equal((await refused.exited).code, 1);
    const stderr = refused.stderr();
    assert.match(
      stderr,
      /cannot use the PostgreSQL database someone@127\.0\.0\.1:1\/somedb: .*ECONNREFUSED/,
    );
    assert.match(stderr, /hint: check that PostgreSQL runs/);
    assert.doesNotMatch(stderr, /s3cret-pass/);
    assert.doesNotMatch(stderr, /\n\s+at /, `no stack trace: ${stderr}`);
  },
);

// A --database-url refused as no PostgreSQL URL was repeated by commander's usage error, with
// the password in it, on stderr (and in the JSON of --json), where CI logs keep it.
test(
  "a database URL refused as malformed is not repeated: its password stays out",
  TIMEOUT,
  async (t) => {
    const dataDir = tempDir(t);
    const cases: { args: string[]; env?: NodeJS.ProcessEnv }[] = [
      { args: ["--database-url", "mysql://someone:s3cret-pass@db.internal/app"] },
      // A postgres URL that does not parse: its port is out of range.
      { args: ["--database-url", "postgres://someone:s3cret-pass@db.internal:99999/app"] },
      {
        args: [],
        env: { BACKSTATE_DATABASE_URL: "postgresql+psycopg://someone:s3cret-pass@db/app" },
      },
      { args: ["--json", "--database-url", "mysql://someone:s3cret-pass@db.internal/app"] },
    ];
    for (const { args, env } of cases) {
      const cli = runCli(["serve", "--data-dir", dataDir, ...args], env);
      const exit = await cli.exited;
      assert.deepEqual(exit, { code: 2, signal: null }, `${args.join(" ")}: ${cli.stderr()}`);
      assert.match(cli.stderr(), /--database-url.*postgres:\/\//);
      assert.doesNotMatch(cli.stderr(), /s3cret-pass/);
    }
    assert.ok(!existsSync(join(dataDir, "backstate.db")), "nothing was started");
  },
);

test(
  "a second server on a data dir in use is refused; the dir is free once the first dies",
  TIMEOUT,
  async (t) => {
    const dataDir = tempDir(t);
    const first = await serve(dataDir);
    t.after(() => first.child.kill("SIGKILL"));
    const { adminToken: token, orgId } = readCredentials(first.credentialsPath);

    const second = runCli(["serve", "--port", "0", "--data-dir", dataDir]);
    assert.deepEqual(await second.exited, { code: 1, signal: null });
    assert.match(second.stderr(), /data dir .* is in use by another Backstate server/);
    assert.equal((await call(first.url, token, "GET", "/orgs", { orgId })).status, 200);

    // A crash leaves no stale claim: the operating system drops the lock with the process.
    first.child.kill("SIGKILL");
    await first.exited;
    const third = await serve(dataDir);
    t.after(() => third.child.kill("SIGKILL"));
    assert.equal((await call(third.url, token, "GET", "/orgs", { orgId })).status, 200);
    assert.deepEqual(await stop(third), { code: 0, signal: null });
  },
);

// A machine whose "hang" event invokes a service that never settles; "poke" does nothing there.
const HANGING_MACHINE = `
import { createMachine, fromPromise } from "xstate";
export default createMachine({
  initial: "idle",
  states: {
    idle: { on: { hang: "hanging" } },
    hanging: {
      on: { poke: {} },
      invoke: { src: fromPromise(() => new Promise(() => {})), onError: "failed" },
    },
    failed: {},
  },
});
export const allowRead = () => true;
export const allowWrite = () => true;
`;

test(
  "after a crash, the restarted server delivers its dead services' errors at once",
  TIMEOUT,
  async (t) => {
    const dataDir = tempDir(t);
    const {
      server: first,
      token,
      orgId,
    } = await serveWithInstance(t, dataDir, "hangs", HANGING_MACHINE);
    // The request waits for the service, which never ends: it dies with the server.
    void call(first.url, token, "POST", "/machines/hangs/i/one/events", {
      orgId,
      body: { event: { type: "hang" } },
    }).catch(() => {});
    for (;;) {
      const seen = await call(first.url, token, "GET", "/machines/hangs/i/one", { orgId });
      if ((seen.body as { state?: unknown }).state === "hanging") break;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    first.child.kill("SIGKILL");
    await first.exited;

    // The service's lease (30 s) is still running, but its node is gone for sure: the data dir was
    // its alone. The next event finds the service lost and its error event delivered first.
    const again = await serve(dataDir);
    t.after(() => again.child.kill("SIGKILL"));
    const poked = await call(again.url, token, "POST", "/machines/hangs/i/one/events", {
      orgId,
      body: { event: { type: "poke" } },
    });
    assert.equal(poked.status, 200, JSON.stringify(poked));
    assert.equal((poked.body as { state: unknown }).state, "failed");
    assert.deepEqual(await stop(again), { code: 0, signal: null });
  },
);

test(
  "--settle-timeout: a request stops waiting for its service then, and the error event is owed",
  TIMEOUT,
  async (t) => {
    const dataDir = tempDir(t);
    const server = await serve(dataDir, ["--settle-timeout", "300", "--instance-cache-size", "0"]);
    t.after(() => server.child.kill("SIGKILL"));
    const { adminToken: token, orgId } = readCredentials(server.credentialsPath);
    await deploy(server.url, { token, orgId }, "hangs", HANGING_MACHINE);
    const slug = { orgId, body: { slug: "one" } };
    assert.equal((await call(server.url, token, "POST", "/machines/hangs", slug)).status, 200);

    // The default would hold this request for 90 s, past the test's own limit (60 s): no clock
    // is read here, an answer at all is what shows the flag took effect.
    const hung = await call(server.url, token, "POST", "/machines/hangs/i/one/events", {
      orgId,
      body: { event: { type: "hang" } },
    });
    assert.equal(hung.status, 200, JSON.stringify(hung));
    assert.equal((hung.body as { state: unknown }).state, "hanging");
    // The service was stopped at the deadline: its error event comes before the next event.
    const poked = await call(server.url, token, "POST", "/machines/hangs/i/one/events", {
      orgId,
      body: { event: { type: "poke" } },
    });
    assert.equal((poked.body as { state: unknown }).state, "failed");
    assert.deepEqual(await stop(server), { code: 0, signal: null });
  },
);

test("environment variables configure serve; flags win over them", TIMEOUT, async (t) => {
  const fromEnv = tempDir(t);
  const fromFlag = tempDir(t);
  const env = {
    BACKSTATE_PORT: "0",
    BACKSTATE_HOST: "127.0.0.1",
    BACKSTATE_DATA_DIR: fromEnv,
    BACKSTATE_PUBLIC_URL: "https://backstate.example.com/",
  };
  const byEnv = await served(runCli(["serve"], env));
  t.after(() => byEnv.child.kill("SIGKILL"));
  assert.equal(byEnv.credentialsPath, join(fromEnv, "credentials.json"));
  assert.equal(readCredentials(byEnv.credentialsPath).apiUrl, "https://backstate.example.com");
  const orgs = await call(
    byEnv.url,
    readCredentials(byEnv.credentialsPath).adminToken,
    "GET",
    "/orgs",
  );
  assert.equal(orgs.status, 200);
  assert.deepEqual(await stop(byEnv), { code: 0, signal: null });

  const byFlag = await served(
    runCli(["serve", "--port", "0", "--data-dir", fromFlag, "--public-url", "http://localhost:9"], {
      ...env,
      BACKSTATE_PORT: "not a port",
    }),
  );
  t.after(() => byFlag.child.kill("SIGKILL"));
  assert.equal(byFlag.credentialsPath, join(fromFlag, "credentials.json"));
  assert.equal(readCredentials(byFlag.credentialsPath).apiUrl, "http://localhost:9");
  assert.deepEqual(await stop(byFlag), { code: 0, signal: null });
});

/** The status the server answers a WebSocket handshake to /rt with (101: the socket opened). */
function realtimeHandshake(url: string, token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const handshake = request(`${url}/rt?token=${encodeURIComponent(token)}`, {
      headers: {
        connection: "Upgrade",
        upgrade: "websocket",
        "sec-websocket-key": randomBytes(16).toString("base64"),
        "sec-websocket-version": "13",
      },
    });
    handshake.on("upgrade", (response, socket) => {
      socket.destroy();
      resolve(response.statusCode ?? 0);
    });
    handshake.on("response", (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    handshake.on("error", reject);
    handshake.end();
  });
}

test(
  "--realtime-token-grace and its variable: how long an expired token still opens a socket",
  TIMEOUT,
  async (t) => {
    const variable = { BACKSTATE_REALTIME_TOKEN_GRACE_SECONDS: "3600" };
    // Expired ten minutes ago: beyond the 30 s of clock skew, within the variable's hour.
    const expiredToken = async (server: { url: string; credentialsPath: string }) => {
      const { adminToken, orgId } = readCredentials(server.credentialsPath);
      const created = await call(server.url, adminToken, "POST", "/keys", {
        orgId,
        body: { name: "rt", scopes: ["state.read"] },
      });
      assert.equal(created.status, 200, JSON.stringify(created));
      const { id, key } = created.body as { id: string; key: string };
      const exp = Math.floor(Date.now() / 1000) - 600;
      return signToken(
        { stateBackedKeyId: id, stateBackedSecretKey: key },
        { sub: "a" },
        {
          expires: { at: exp },
        },
      );
    };
    const byVariable = await serve(tempDir(t), [], variable);
    t.after(() => byVariable.child.kill("SIGKILL"));
    assert.equal(await realtimeHandshake(byVariable.url, await expiredToken(byVariable)), 101);
    assert.deepEqual(await stop(byVariable), { code: 0, signal: null });

    const byFlag = await serve(tempDir(t), ["--realtime-token-grace", "0"], variable);
    t.after(() => byFlag.child.kill("SIGKILL"));
    assert.equal(await realtimeHandshake(byFlag.url, await expiredToken(byFlag)), 403);
    assert.deepEqual(await stop(byFlag), { code: 0, signal: null });
  },
);

test("a second signal exits at once, without waiting for the event", TIMEOUT, async (t) => {
  const server = await serve(tempDir(t));
  t.after(() => server.child.kill("SIGKILL"));
  const { adminToken: token, orgId } = readCredentials(server.credentialsPath);
  await deploy(server.url, { token, orgId }, "hangs", HANGING_MACHINE);
  await call(server.url, token, "POST", "/machines/hangs", { orgId, body: { slug: "one" } });
  // The event's service never ends: a server that waited for it would outlive the test (its
  // settle timeout is 90 s), so an exit at all shows that it did not wait.
  const inFlight = call(server.url, token, "POST", "/machines/hangs/i/one/events", {
    orgId,
    body: { event: "hang" },
  }).catch(() => undefined);
  for (;;) {
    const seen = await call(server.url, token, "GET", "/machines/hangs/i/one", { orgId });
    if ((seen.body as { state?: unknown }).state === "hanging") break;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  server.child.kill("SIGTERM");
  // The second signal only once the first is taken (two sent together may arrive as one).
  while (!server.stderr().includes("shutting down")) {
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  server.child.kill("SIGTERM");
  assert.deepEqual(await server.exited, { code: 143, signal: null });
  assert.match(server.stderr(), /second signal/);
  await inFlight;
});

// A machine whose "get" event fetches the event's URL in a service and keeps what came of it.
const FETCHING_MACHINE = `
import { assign, createMachine, fromPromise } from "xstate";
export default createMachine({
  initial: "idle",
  context: { public: { outcome: null } },
  states: {
    idle: { on: { get: "fetching" } },
    fetching: {
      invoke: {
        src: fromPromise(({ input }) =>
          fetch(input.url).then(
            (response) => response.text(),
            (error) => "failed: " + (error.cause?.code ?? error.message),
          ),
        ),
        input: ({ event }) => ({ url: event.url }),
        onDone: { target: "idle", actions: assign({ public: ({ event }) => ({ outcome: event.output }) }) },
      },
    },
  },
});
export const allowRead = () => true;
export const allowWrite = () => true;
`;

test(
  "machines may fetch from private addresses only with --allow-private-fetch or its variable",
  TIMEOUT,
  async (t) => {
    let requests = 0;
    const local = createServer((_request, response) => {
      requests++;
      response.end("internal");
    });
    await new Promise<void>((resolve) => local.listen(0, "127.0.0.1", resolve));
    t.after(() => local.close());
    const url = `http://127.0.0.1:${(local.address() as AddressInfo).port}/`;

    const outcomeWith = async (args: string[], env: NodeJS.ProcessEnv = {}) => {
      const server = await serve(tempDir(t), args, env);
      t.after(() => server.child.kill("SIGKILL"));
      const { adminToken: token, orgId } = readCredentials(server.credentialsPath);
      await deploy(server.url, { token, orgId }, "fetcher", FETCHING_MACHINE);
      await call(server.url, token, "POST", "/machines/fetcher", { orgId, body: { slug: "one" } });
      const sent = await call(server.url, token, "POST", "/machines/fetcher/i/one/events", {
        orgId,
        body: { event: { type: "get", url } },
      });
      assert.equal(sent.status, 200, JSON.stringify(sent));
      assert.deepEqual(await stop(server), { code: 0, signal: null });
      return (sent.body as { publicContext: { outcome: unknown } }).publicContext.outcome;
    };

    assert.equal(await outcomeWith([]), "failed: address-refused");
    assert.equal(requests, 0);
    assert.equal(await outcomeWith(["--allow-private-fetch"]), "internal");
    assert.equal(await outcomeWith([], { BACKSTATE_ALLOW_PRIVATE_FETCH: "1" }), "internal");
    assert.equal(requests, 2);
    // Set, but to off: the switch stays off (commander alone would take any value as on).
    const off = { BACKSTATE_ALLOW_PRIVATE_FETCH: "false" };
    assert.equal(await outcomeWith([], off), "failed: address-refused");
    assert.equal(requests, 2);
    // A flag on the command line wins over its variable.
    assert.equal(await outcomeWith(["--allow-private-fetch"], off), "internal");
    assert.equal(requests, 3);
  },
);

test(
  "a first start cut short after claiming the admin's ids: the next start finishes the setup at once",
  TIMEOUT,
  async (t) => {
    const dataDir = tempDir(t);
    // What a kill (or Ctrl-C twice) between the bootstrap's first two writes leaves behind.
    const store = openSqliteStore({ path: join(dataDir, "backstate.db") });
    await store.migrate();
    const ids = { userId: "usr_cutshort", orgId: "org_cutshort", at: Date.now() };
    await store.ensureSetting("bootstrap-admin", JSON.stringify(ids));
    await store.close();

    const server = await serve(dataDir);
    t.after(() => server.child.kill("SIGKILL"));
    const credentials = readCredentials(server.credentialsPath);
    assert.equal(credentials.orgId, ids.orgId);
    const orgs = await call(server.url, credentials.adminToken, "GET", "/orgs");
    assert.equal(orgs.status, 200);
    assert.deepEqual(
      (orgs.body as { orgs: { id: string }[] }).orgs.map((org) => org.id),
      [ids.orgId],
    );
    assert.deepEqual(await stop(server), { code: 0, signal: null });
  },
);

// Naming the database in the message decoded the URL's user, and a stray '%' there ended the
// start with URIError's stack trace instead of the message and its hint.
test(
  "a database it cannot use whose URL's user is not percent-encoded is still named plainly",
  TIMEOUT,
  async (t) => {
    const refused = runCli([
      "serve",
      "--port",
      "0",
      "--data-dir",
      tempDir(t),
      "--database-url",
      "postgres://100%user:s3cret-pass@127.0.0.1:1/somedb",
    ]);
    assert.equal((await refused.exited).code, 1);
    const stderr = refused.stderr();
    assert.match(stderr, /cannot use the PostgreSQL database 100%user@127\.0\.0\.1:1\/somedb: /);
    assert.match(stderr, /hint: check that PostgreSQL runs/);
    assert.doesNotMatch(stderr, /s3cret-pass/);
    assert.doesNotMatch(stderr, /\n\s+at /, `no stack trace: ${stderr}`);
  },
);
