// Runs the built `backstate` command as a child process, the way a user does, and talks to the
// server it starts over HTTP.
import { spawn, type ChildProcess } from "node:child_process";
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** dist/test/support/cli.js → dist/src/main.js, and the repository root four folders up. */
export const MAIN = fileURLToPath(new URL("../../src/main.js", import.meta.url));
export const REPO_ROOT = join(dirname(MAIN), "..", "..", "..", "..");

export type Exit = { code: number | null; signal: NodeJS.Signals | null };

export type CliProcess = {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<Exit>;
  /** Resolves once stdout has a line matching `pattern` (rejects if the process exits first). */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
};

export function runCli(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  options: { cwd?: string; openFileLimit?: number } = {},
): CliProcess {
  // Under a lower open-file limit: set by a shell, which then becomes the command (exec).
  const [command, commandArgs] =
    options.openFileLimit === undefined
      ? [process.execPath, [MAIN, ...args]]
      : [
          "/bin/sh",
          [
            "-c",
            `ulimit -n ${options.openFileLimit} && exec "$0" "$@"`,
            process.execPath,
            MAIN,
            ...args,
          ],
        ];
  const child = spawn(command, commandArgs, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...withoutBackstateVariables(process.env), ...env },
    ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<Exit>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    async waitForLine(pattern, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      let done = false;
      void exited.then(() => (done = true));
      for (;;) {
        const line = stdout.split("\n").find((candidate) => pattern.test(candidate));
        if (line !== undefined) return line;
        if (done || Date.now() > deadline) {
          throw new Error(
            `no line matching ${String(pattern)} (${done ? "exited" : "timed out"});\n` +
              `stdout: ${stdout}\nstderr: ${stderr}`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
  };
}

export type Served = CliProcess & { url: string; credentialsPath: string };

/** `backstate serve` on a free port; resolves once it has printed where credentials.json is. */
export async function serve(
  dataDir: string,
  extraArgs: readonly string[] = [],
  env: NodeJS.ProcessEnv = {},
): Promise<Served> {
  const cli = runCli(["serve", "--port", "0", "--data-dir", dataDir, ...extraArgs], env);
  return served(cli);
}

export async function served(cli: CliProcess): Promise<Served> {
  try {
    const listening = await cli.waitForLine(/^Backstate is listening at /);
    const credentials = await cli.waitForLine(/^Admin credentials .* are in /);
    const url = /https?:\/\/\S+/.exec(listening)?.[0];
    if (url === undefined) throw new Error(`no URL in ${listening}`);
    return { ...cli, url, credentialsPath: credentials.replace(/^.* are in /, "") };
  } catch (error) {
    cli.child.kill("SIGKILL");
    throw error;
  }
}

export type Finished = { code: number | null; stdout: string; stderr: string };

/** Runs `backstate args…` to its end. */
export async function backstate(
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<Finished> {
  const cli = runCli(args, options.env, options.cwd !== undefined ? { cwd: options.cwd } : {});
  const { code } = await cli.exited;
  return { code, stdout: cli.stdout(), stderr: cli.stderr() };
}

/** Asserts the run succeeded and parses its stdout as JSON. */
export function parsed<T = Record<string, unknown>>(result: Finished): T {
  if (result.code !== 0) {
    throw new Error(`exit ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
  }
  return JSON.parse(result.stdout) as T;
}

/** Sends SIGTERM and waits for the process to end. */
export async function stop(cli: CliProcess): Promise<Exit> {
  cli.child.kill("SIGTERM");
  return cli.exited;
}

export function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), "backstate-cli-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The tests set what they mean to; a developer's own BACKSTATE_* must not leak in. */
function withoutBackstateVariables(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !name.startsWith("BACKSTATE_")));
}

export type Reply = { status: number; body: unknown };

/** A JSON request with the admin token (and org header, when given). */
export async function call(
  url: string,
  token: string,
  method: string,
  path: string,
  options: { body?: unknown; orgId?: string } = {},
): Promise<Reply> {
  const response = await fetch(url + path, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      "content-type": "application/json",
      ...(options.orgId !== undefined ? { "x-statebacked-org-id": options.orgId } : {}),
    },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as unknown) : undefined };
}

/**
 * Creates the machine and makes `code` its current version through the HTTP API: provisional
 * version, multipart upload to the returned URL, finalize.
 */
export async function deploy(
  url: string,
  admin: { token: string; orgId: string },
  machineName: string,
  code: string,
): Promise<void> {
  const request = (method: string, path: string, body?: unknown) =>
    call(url, admin.token, method, path, { orgId: admin.orgId, body });
  const created = await request("POST", "/machines", { slug: machineName });
  if (created.status !== 201) throw new Error(`create machine: ${JSON.stringify(created)}`);
  const provisional = await request("POST", `/machines/${machineName}/v`);
  const { machineVersionId, codeUploadUrl, codeUploadFields } = provisional.body as {
    machineVersionId: string;
    codeUploadUrl: string;
    codeUploadFields: Record<string, string>;
  };
  const form = new FormData();
  for (const [name, value] of Object.entries(codeUploadFields)) form.set(name, value);
  form.set("file", new Blob([code], { type: "application/javascript" }), `${machineName}.js`);
  const uploaded = await fetch(codeUploadUrl, { method: "POST", body: form });
  if (!uploaded.ok) throw new Error(`upload: ${uploaded.status} ${await uploaded.text()}`);
  const finalized = await request("PUT", `/machines/${machineName}/v/${machineVersionId}`, {
    makeCurrent: true,
  });
  if (finalized.status !== 200) throw new Error(`finalize: ${JSON.stringify(finalized)}`);
}

export type AdminCredentials = { apiUrl: string; orgId: string; adminToken: string };

/** A server for a whole test file, and `run` for `backstate` commands against it. */
export type TestServer = Served & {
  dataDir: string;
  /** BACKSTATE_HOME of the commands `run` runs: empty, so only credentials.json is found. */
  home: string;
  credentials: AdminCredentials;
  /** `backstate args…` with BACKSTATE_DATA_DIR (and BACKSTATE_HOME) set for this server. */
  run(
    args: readonly string[],
    options?: { env?: NodeJS.ProcessEnv; cwd?: string },
  ): Promise<Finished>;
  close(): Promise<void>;
};

export async function startTestServer(): Promise<TestServer> {
  const root = mkdtempSync(join(tmpdir(), "backstate-cli-"));
  const dataDir = join(root, "data");
  const home = join(root, "home");
  mkdirSync(home);
  const server = await serve(dataDir);
  const credentials = JSON.parse(readFileSync(server.credentialsPath, "utf8")) as AdminCredentials;
  return {
    ...server,
    dataDir,
    home,
    credentials,
    run: (args, options = {}) =>
      backstate(args, {
        cwd: options.cwd ?? root,
        env: { BACKSTATE_DATA_DIR: dataDir, BACKSTATE_HOME: home, ...options.env },
      }),
    async close() {
      await stop(server);
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** The fixtures folder in the source tree (dist/test/support → test/fixtures). */
export const FIXTURES = join(REPO_ROOT, "packages", "cli", "test", "fixtures");

/** A test server with the toggle machine (fixtures/toggle.ts) created through the CLI. */
export async function startTestServerWithToggle(): Promise<TestServer> {
  const server = await startTestServer();
  try {
    const create = ["machines", "create", "-m", "toggle", "-f", join(FIXTURES, "toggle.ts")];
    parsed(await server.run([...create, "--json"]));
  } catch (error) {
    await server.close();
    throw error;
  }
  return server;
}

/**
 * A folder that stands for a user's project: `files` written into it, and `node_modules/xstate`
 * linked to the XState the test wants (4 → the repo's `xstate4` alias, 5 → `xstate`).
 */
export function projectDir(
  t: { after(fn: () => void): void },
  xstate: 4 | 5 | undefined,
  files: Record<string, string>,
): string {
  const dir = tempDir(t);
  if (xstate !== undefined) {
    mkdirSync(join(dir, "node_modules"));
    const target = realpathSync(
      join(REPO_ROOT, "node_modules", xstate === 4 ? "xstate4" : "xstate"),
    );
    symlinkSync(target, join(dir, "node_modules", "xstate"), "dir");
  }
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}
