// State Backed's own CLI, smply@0.1.18, against a Backstate server: installed from the npm
// registry as the README says (the pinned package.json of the shared reference cli-client.md §0),
// given its credentials by `backstate smply-credentials`, and run as a user runs it.
//
// The install is cached under a stable temporary path, keyed by the package.json, so reruns take
// no network. When the registry cannot be reached the test fails in CI (CI is set) and is skipped
// elsewhere, saying why.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { call, parsed, startTestServer, tempDir } from "./support/cli.js";

/** The README's package.json for smply, plus XState 4 for the machine file smply bundles. */
const SMPLY_PROJECT = {
  name: "smply-for-backstate",
  private: true,
  type: "module",
  dependencies: {
    smply: "0.1.18",
    "@statebacked/client": "0.1.37",
    typescript: "5.9.3",
    ws: "^8",
    xstate: "^4.38.3",
  },
  overrides: {
    typescript: "5.9.3",
    "@supabase/realtime-js": "2.8.4",
    "@supabase/gotrue-js": "2.55.0",
  },
};

const key = createHash("sha256").update(JSON.stringify(SMPLY_PROJECT)).digest("hex").slice(0, 12);
const CACHE = join(tmpdir(), `backstate-smply-0.1.18-${key}`);
const SMPLY = join(CACHE, "node_modules", "smply", "dist", "index.js");
const INSTALLED = join(CACHE, ".installed");

type Run = { code: number | null; stdout: string; stderr: string };

function runProcess(
  command: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number; input?: string },
): Promise<Run> {
  return new Promise((resolve) => {
    const { input, ...spawnOptions } = options;
    const child = spawn(command, args, {
      ...spawnOptions,
      stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    // smply's confirmations read a line from stdin (node:readline), as typed at a prompt.
    if (input !== undefined) child.stdin?.end(input);
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr: `${stderr}${String(error)}` });
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** npm's settings for this machine, without those `npm test` set for the workspace it runs in. */
function npmEnvironment(): NodeJS.ProcessEnv {
  const keep = new Set([
    "npm_config_cache",
    "npm_config_userconfig",
    "npm_config_registry",
    "npm_config_cafile",
  ]);
  return Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) => !(name.startsWith("npm_") && !keep.has(name)) && name !== "INIT_CWD",
    ),
  );
}

/** smply installed in the cache folder, or why it could not be. */
async function installSmply(): Promise<{ ok: true } | { ok: false; reason: string }> {
  if (existsSync(INSTALLED) && existsSync(SMPLY)) return { ok: true };
  const staging = mkdtempSync(join(tmpdir(), "backstate-smply-staging-"));
  try {
    writeFileSync(join(staging, "package.json"), `${JSON.stringify(SMPLY_PROJECT, null, 2)}\n`);
    const npm = process.platform === "win32" ? "npm.cmd" : "npm";
    const installed = await runProcess(
      npm,
      [
        "install",
        "--prefix",
        staging,
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
        // An unreachable registry fails in seconds, not after npm's minutes of back-off.
        "--fetch-retries=2",
        "--fetch-retry-mintimeout=1000",
        "--fetch-retry-maxtimeout=5000",
      ],
      { cwd: staging, env: npmEnvironment(), timeoutMs: 240_000 },
    );
    if (installed.code !== 0) {
      const output = `${installed.stderr}\n${installed.stdout}`
        .trim()
        .split("\n")
        .slice(0, 6)
        .join("\n");
      const how = installed.code === null ? "did not finish in 240 s" : `exited ${installed.code}`;
      return { ok: false, reason: `npm install of smply@0.1.18 ${how}:\n${output}` };
    }
    const help = await runProcess(
      process.execPath,
      [join(staging, "node_modules", "smply", "dist", "index.js"), "--help"],
      {
        cwd: staging,
        env: { PATH: process.env.PATH },
        timeoutMs: 60_000,
      },
    );
    if (help.code !== 0)
      return { ok: false, reason: `smply --help failed after install:\n${help.stderr}` };
    writeFileSync(join(staging, ".installed"), new Date().toISOString());
    rmSync(CACHE, { recursive: true, force: true });
    renameSync(staging, CACHE);
    return { ok: true };
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

// XState v4 in TypeScript, as State Backed's users wrote machines for smply.
const MACHINE = `import { createMachine } from "xstate";

type AuthArgs = { machineInstanceName: string; authContext: { sub?: string } };

export default createMachine({
  id: "lamp",
  predictableActionArguments: true,
  initial: "off",
  states: { off: { on: { toggle: "on" } }, on: { on: { toggle: "off" } } },
});

export const allowRead = ({ machineInstanceName, authContext }: AuthArgs) =>
  machineInstanceName === authContext.sub;
export const allowWrite = ({ machineInstanceName, authContext }: AuthArgs) =>
  machineInstanceName === authContext.sub;
`;

type Smply = {
  server: Awaited<ReturnType<typeof startTestServer>>;
  /** Runs smply (`input` typed at its prompts) and answers how it ended. */
  run: (args: string[], input?: string) => Promise<Run>;
  /** Runs smply to a successful end and answers what it printed. */
  text: (...args: string[]) => Promise<string>;
  json: (...args: string[]) => Promise<Record<string, unknown>>;
};

/** smply installed, a server, and smply's credentials for it; undefined when skipped. */
async function smplyAgainstServer(t: TestContext): Promise<Smply | undefined> {
  const installed = await installSmply();
  if (!installed.ok) {
    if (process.env.CI) assert.fail(installed.reason);
    t.skip(`smply could not be installed from the npm registry: ${installed.reason}`);
    return undefined;
  }

  const server = await startTestServer();
  t.after(() => server.close());
  const home = tempDir(t);
  const work = tempDir(t);
  writeFileSync(join(work, "lamp.ts"), MACHINE);
  // The machine's project: smply's esbuild resolves xstate (v4) from the file's folder.
  symlinkSync(join(CACHE, "node_modules"), join(work, "node_modules"), "dir");

  parsed(await server.run(["smply-credentials", "--home", home, "--json"]));
  const run = (args: string[], input?: string) =>
    runProcess(process.execPath, [SMPLY, "--api-url", server.url, ...args], {
      cwd: work,
      // HOME holds .smply/credentials and .smply/default-org; nothing else of ours leaks in.
      env: { PATH: process.env.PATH, HOME: home },
      timeoutMs: 60_000,
      ...(input === undefined ? {} : { input }),
    });
  const text = async (...args: string[]) => {
    const result = await run(args);
    assert.equal(
      result.code,
      0,
      `smply ${args.join(" ")}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`,
    );
    return result.stdout;
  };
  const json = async (...args: string[]) =>
    JSON.parse(await text(...args)) as Record<string, unknown>;
  return { server, run, text, json };
}

test(
  "smply@0.1.18, installed as documented, creates a machine and drives an instance",
  { timeout: 300_000 },
  async (t) => {
    const smplyRun = await smplyAgainstServer(t);
    if (smplyRun === undefined) return;
    const { server, text: smplyText, json: smply } = smplyRun;
    const user1 = ["--machine", "lamp", "--instance", "user1"];
    const actAs = ["--auth-context", '{"sub":"user1"}'];

    const created = (await smply(
      "machines",
      "create",
      "--machine",
      "lamp",
      "--node",
      "./lamp.ts",
    )) as {
      name: string;
      currentVersion: { machineVersionId: string };
    };
    assert.equal(created.name, "lamp");
    assert.match(created.currentVersion.machineVersionId, /^ver_/);

    const started = await smply("instances", "create", ...user1, ...actAs);
    assert.equal(started.state, "off");
    const toggled = await smply("instances", "send-event", ...user1, "--event", "toggle", ...actAs);
    assert.equal(toggled.state, "on");
    const read = (await smply("instances", "get", ...user1)) as {
      state: string;
      status: string;
      machineVersion: { id: string; clientInfo: string };
    };
    assert.deepEqual(
      [read.state, read.status, read.machineVersion.id, read.machineVersion.clientInfo],
      ["on", "running", created.currentVersion.machineVersionId, "0.0.1"],
    );

    // backstate sees what smply did.
    const seen = parsed(await server.run(["instances", "get", ...user1, ...actAs, "--json"]));
    assert.equal(seen.state, "on");

    // smply sends its default `use: "production"` along with --scopes: the scopes are the key's.
    // It prints the new key's id and secret for people, not JSON.
    const printed = await smplyText(
      "keys",
      "create",
      "-n",
      "scoped",
      "--scopes",
      "machines.read",
      "state.read",
    );
    const scopedId = /sbk_[A-Za-z0-9_-]+/.exec(printed)?.[0];
    assert.ok(scopedId !== undefined, printed);
    const keys = parsed<{ keys: { id: string; scopes: string[] }[] }>(
      await server.run(["keys", "list", "--json"]),
    );
    assert.deepEqual(keys.keys.find((k) => k.id === scopedId)?.scopes.sort(), [
      "machines.read",
      "state.read",
    ]);
  },
);

/**
 * A list command's output: one JSON array per page, printed one after the other (each by
 * JSON.stringify(page, null, 2), so an empty page is "[]" and a page's last line is "]").
 */
function pagesOf(printed: string): unknown[][] {
  const pages: unknown[][] = [];
  let start = -1;
  for (const [index, line] of printed.split("\n").entries()) {
    if (line === "[]") pages.push([]);
    else if (line === "[") start = index;
    else if (line === "]" && start >= 0) {
      pages.push(
        JSON.parse(
          printed
            .split("\n")
            .slice(start, index + 1)
            .join("\n"),
        ) as unknown[],
      );
      start = -1;
    }
  }
  return pages;
}

test(
  "smply@0.1.18's list, inspect, pause and delete commands, each as a user runs it",
  { timeout: 300_000 },
  async (t) => {
    const smply = await smplyAgainstServer(t);
    if (smply === undefined) return;
    const { server, run, text, json } = smply;
    const admin = (method: string, path: string, body?: unknown) =>
      call(server.url, server.credentials.adminToken, method, path, {
        orgId: server.credentials.orgId,
        ...(body === undefined ? {} : { body }),
      });
    const lamp = ["--machine", "lamp"];
    const actAs = (sub: string) => ["--auth-context", JSON.stringify({ sub })];

    await json("machines", "create", ...lamp, "--node", "./lamp.ts");
    // It prints "Valid bundle" (its local check), then the new version.
    const second = await text(
      "machine-versions",
      "create",
      ...lamp,
      "--version-reference",
      "0.0.2",
      "--node",
      "./lamp.ts",
    );
    const versions = pagesOf(await text("machine-versions", "list", ...lamp)).flat() as Array<{
      id: string;
      clientInfo: string;
    }>;
    assert.deepEqual(
      versions.map((version) => version.clientInfo),
      ["0.0.1", "0.0.2"],
    );
    assert.ok(second.includes(versions[1]!.id), second);

    // More machines than one page: smply follows the cursor to the end, and stops there.
    for (let i = 0; i < 101; i++) {
      assert.equal((await admin("POST", "/machines", { slug: `extra-${i}` })).status, 201);
    }
    const machinePages = pagesOf(await text("machines", "list"));
    assert.equal(machinePages.length, 2);
    const machines = machinePages.flat() as Array<{ name: string; currentVersion?: unknown }>;
    assert.equal(machines.length, 102);
    assert.ok(machines.find((machine) => machine.name === "lamp")?.currentVersion);
    const got = await json("machines", "get", ...lamp);
    assert.deepEqual(Object.keys(got), ["machine"]);

    for (const sub of ["user1", "user2"]) {
      await json("instances", "create", ...lamp, "--instance", sub, ...actAs(sub));
    }
    await json(
      "instances",
      "send-event",
      ...lamp,
      "--instance",
      "user1",
      "-e",
      "toggle",
      ...actAs("user1"),
    );
    // An instance pinned to a version that is not current, with an initial context.
    const secondId = versions[1]!.id;
    await json(
      "instances",
      "create",
      ...lamp,
      "--instance",
      "user3",
      "--context",
      JSON.stringify({ note: "given" }),
      "--version",
      secondId,
      ...actAs("user3"),
    );
    const pinned = (await json("instances", "get", ...lamp, "--instance", "user3")) as {
      context: { note?: string };
      machineVersion: { id: string };
    };
    assert.deepEqual([pinned.machineVersion.id, pinned.context.note], [secondId, "given"]);

    // A token `smply tokens generate` signs locally reads the instance as its end user.
    const reader = JSON.parse(
      /\{[\s\S]*\}/.exec(
        await text("keys", "create", "-n", "reader", "--scopes", "state.read"),
      )?.[0] ?? "null",
    ) as { id: string; key: string };
    const jwt = (
      await text("tokens", "generate", "-k", reader.id, "-s", reader.key, "-c", '{"sub":"user1"}')
    ).trim();
    const readAsUser = await fetch(`${server.url}/machines/lamp/i/user1`, {
      headers: { authorization: `Bearer ${jwt}`, "content-type": "application/json" },
    });
    assert.equal(readAsUser.status, 200);
    assert.equal(((await readAsUser.json()) as { state: string }).state, "on");

    const instances = pagesOf(await text("instances", "list", ...lamp)).flat() as Array<{
      name: string;
      status: string;
    }>;
    assert.deepEqual(
      instances.map((instance) => [instance.name, instance.status]),
      [
        ["user1", "running"],
        ["user2", "running"],
        ["user3", "running"],
      ],
    );
    const transitions = pagesOf(
      await text("instances", "list-transitions", ...lamp, "--instance", "user1"),
    ).flat();
    assert.equal(transitions.length, 2);

    // Pausing asks for the instance's name again; a paused instance refuses events (409).
    const paused = await run(
      ["instances", "set-status", ...lamp, "--instance", "user1", "--status", "paused"],
      "user1\n",
    );
    assert.match(paused.stdout, /Set instance status/, paused.stderr);
    const refused = await run([
      "instances",
      "send-event",
      ...lamp,
      "--instance",
      "user1",
      "-e",
      "toggle",
      ...actAs("user1"),
    ]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stdout + refused.stderr, /invalid-state/);
    await text("instances", "set-status", ...lamp, "--instance", "user1", "--status", "running");
    await json(
      "instances",
      "send-event",
      ...lamp,
      "--instance",
      "user1",
      "-e",
      "toggle",
      ...actAs("user1"),
    );

    // A machine with instances is not deleted; deleting both instances lets it go.
    const refusedDelete = await run(["machines", "delete", ...lamp], "lamp\n");
    assert.match(refusedDelete.stdout + refusedDelete.stderr, /instances/i);
    assert.equal((await admin("GET", "/machines/lamp")).status, 200);
    for (const sub of ["user1", "user2", "user3"]) {
      const deleted = await run(["instances", "delete", ...lamp, "--instance", sub], `${sub}\n`);
      assert.match(deleted.stdout, /Deleted instance/, deleted.stderr);
    }
    assert.equal(pagesOf(await text("instances", "list", ...lamp)).flat().length, 0);
    const gone = await run(["machines", "delete", ...lamp], "lamp\n");
    assert.match(gone.stdout, /Deleted machine/, gone.stderr);
    assert.equal((await admin("GET", "/machines/lamp")).status, 404);

    // Keys: listed, then deleted.
    const printed = await text("keys", "create", "-n", "doomed", "--scopes", "state.read");
    const keyId = /sbk_[A-Za-z0-9_-]+/.exec(printed)?.[0];
    assert.ok(keyId !== undefined, printed);
    const keys = pagesOf(await text("keys", "list")).flat() as Array<{ id: string }>;
    assert.ok(keys.some((key) => key.id === keyId));
    await text("keys", "delete", "-k", keyId);
    const after = pagesOf(await text("keys", "list")).flat() as Array<{ id: string }>;
    assert.ok(!after.some((key) => key.id === keyId));

    // Token and identity providers: upsert, list, delete (each delete asks to confirm).
    const mapping = JSON.stringify({ "sub.$": "$.sub" });
    const kept = /sbk_[A-Za-z0-9_-]+/.exec(
      await text("keys", "create", "-n", "app", "--scopes", "state.read"),
    )?.[0];
    assert.ok(kept !== undefined);
    await text("token-providers", "upsert", "-s", "app", "-k", kept, "-m", mapping);
    const providers = pagesOf(await text("token-providers", "list")).flat() as Array<{
      service: string;
    }>;
    assert.ok(providers.some((provider) => provider.service === "app"));
    const noProvider = await run(["token-providers", "delete", "-s", "app"], "app\n");
    assert.match(noProvider.stdout, /Deleted token provider app/, noProvider.stderr);
    assert.ok(
      !(pagesOf(await text("token-providers", "list")).flat() as Array<{ service: string }>).some(
        (provider) => provider.service === "app",
      ),
    );

    await text(
      "identity-providers",
      "upsert",
      "--audience",
      "my-app",
      "--algorithm",
      "HS256",
      "--key",
      "a shared secret of enough bytes",
      "--mapping",
      mapping,
    );
    const idps = pagesOf(await text("identity-providers", "list")).flat() as Array<{
      aud?: string;
      key?: unknown;
    }>;
    const mine = idps.find((idp) => idp.aud === "my-app");
    assert.ok(mine !== undefined && !("key" in mine));
    const noIdp = await run(["identity-providers", "delete", "--audience", "my-app"], "y\n");
    assert.match(noIdp.stdout, /Identity provider configuration deleted/, noIdp.stderr);
    assert.ok(
      !(pagesOf(await text("identity-providers", "list")).flat() as Array<{ aud?: string }>).some(
        (idp) => idp.aud === "my-app",
      ),
    );

    // Orgs: listed, and a new one created (smply prints its id).
    const orgs = pagesOf(await text("orgs", "list")).flat() as Array<{ id: string }>;
    assert.ok(orgs.some((org) => org.id === server.credentials.orgId));
    const createdOrg = await text("orgs", "create", "-n", "second");
    const newOrg = /org_[A-Za-z0-9_-]+/.exec(createdOrg)?.[0];
    assert.ok(newOrg !== undefined, createdOrg);
    const orgsAfter = pagesOf(await text("orgs", "list")).flat() as Array<{ id: string }>;
    assert.ok(orgsAfter.some((org) => org.id === newOrg));
  },
);

test(
  "smply@0.1.18's commands for features this server lacks end with its not-implemented error",
  { timeout: 300_000 },
  async (t) => {
    const smply = await smplyAgainstServer(t);
    if (smply === undefined) return;
    const { run, json } = smply;
    await json("machines", "create", "--machine", "lamp", "--node", "./lamp.ts");
    await json(
      "instances",
      "create",
      "--machine",
      "lamp",
      "--instance",
      "user1",
      "--auth-context",
      '{"sub":"user1"}',
    );
    const { orgId } = smply.server.credentials;
    for (const args of [
      ["billing"],
      // Invitations go by raw fetch (not the client), printing the body of a failure.
      ["invitations", "send", "-o", orgId, "-e", "someone@example.com", "-r", "read"],
      ["invitations", "accept", "-i", "some-invitation-code"],
      ["logs", "get", "--from", "-1h"],
      [
        "instances",
        "set-desired-version",
        "--machine",
        "lamp",
        "--instance",
        "user1",
        "--version",
        "ver_x",
      ],
      [
        "migrations",
        "create",
        "--machine",
        "lamp",
        "--from",
        "ver_a",
        "--to",
        "ver_b",
        "--node",
        "./lamp.ts",
      ],
    ]) {
      const result = await run(args);
      assert.notEqual(result.code, 0, args.join(" "));
      assert.match(result.stdout + result.stderr, /not implemented/, args.join(" "));
    }
  },
);
