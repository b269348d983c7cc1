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
import { test } from "node:test";
import { parsed, startTestServer, tempDir } from "./support/cli.js";

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
  options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
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

test(
  "smply@0.1.18, installed as documented, creates a machine and drives an instance",
  { timeout: 300_000 },
  async (t) => {
    const installed = await installSmply();
    if (!installed.ok) {
      if (process.env.CI) assert.fail(installed.reason);
      t.skip(`smply could not be installed from the npm registry: ${installed.reason}`);
      return;
    }

    const server = await startTestServer();
    t.after(() => server.close());
    const home = tempDir(t);
    const work = tempDir(t);
    writeFileSync(join(work, "lamp.ts"), MACHINE);
    // The machine's project: smply's esbuild resolves xstate (v4) from the file's folder.
    symlinkSync(join(CACHE, "node_modules"), join(work, "node_modules"), "dir");

    parsed(await server.run(["smply-credentials", "--home", home, "--json"]));
    /** Runs smply to a successful end and answers what it printed. */
    const smplyText = async (...args: string[]) => {
      const result = await runProcess(process.execPath, [SMPLY, "--api-url", server.url, ...args], {
        cwd: work,
        // HOME holds .smply/credentials and .smply/default-org; nothing else of ours leaks in.
        env: { PATH: process.env.PATH, HOME: home },
        timeoutMs: 60_000,
      });
      assert.equal(
        result.code,
        0,
        `smply ${args.join(" ")}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`,
      );
      return result.stdout;
    };
    const smply = async (...args: string[]) =>
      JSON.parse(await smplyText(...args)) as Record<string, unknown>;
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
