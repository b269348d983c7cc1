// The CLI around the commands: login files and the order credentials are taken in, whoami, the
// smply credentials, --help everywhere, exit codes, and output for terminals and for scripts.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, test } from "node:test";
import {
  FIXTURES,
  MAIN,
  REPO_ROOT,
  backstate,
  parsed,
  startTestServer,
  tempDir,
  type TestServer,
} from "./support/cli.js";

const TIMEOUT = { timeout: 60_000 };
let server: TestServer;

before(async () => {
  server = await startTestServer();
});
after(() => server.close());

type Whoami = {
  apiUrl: string;
  orgId: string;
  sources: { apiUrl: string; token: string; orgId: string };
  files: string[];
};

test(
  "login checks the token and keeps a 0600 file per server; commands use it anywhere",
  TIMEOUT,
  async (t) => {
    const home = tempDir(t);
    const elsewhere = tempDir(t);
    const { apiUrl, orgId, adminToken } = server.credentials;
    const env = { BACKSTATE_HOME: home };

    const login = parsed<{ apiUrl: string; orgId: string; credentialsPath: string }>(
      await backstate(["login", "--api-url", apiUrl, "--token", adminToken, "--json"], {
        env,
        cwd: elsewhere,
      }),
    );
    const port = new URL(apiUrl).port;
    const path = join(home, "credentials", `127.0.0.1_${port}.json`);
    assert.deepEqual(login, { apiUrl, orgId, credentialsPath: path });
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(join(home, "credentials")).mode & 0o777, 0o700);
    assert.deepEqual(JSON.parse(readFileSync(path, "utf8")), { apiUrl, orgId, adminToken });

    // From a folder with no credentials.json, the only login is the server.
    const who = parsed<Whoami>(await backstate(["whoami", "--json"], { env, cwd: elsewhere }));
    assert.deepEqual(
      { apiUrl: who.apiUrl, orgId: who.orgId, sources: who.sources, files: who.files },
      {
        apiUrl,
        orgId,
        sources: { apiUrl: "login", token: "login", orgId: "login" },
        files: [path],
      },
    );
    assert.equal((await backstate(["machines", "list"], { env, cwd: elsewhere })).code, 0);

    // HOME decides where the files are when BACKSTATE_HOME is not set.
    const userHome = tempDir(t);
    parsed(
      await backstate(["login", "--api-url", apiUrl, "--token", adminToken, "--json"], {
        env: { HOME: userHome },
      }),
    );
    assert.ok(existsSync(join(userHome, ".backstate", "credentials", `127.0.0.1_${port}.json`)));

    // A bad token is refused (3) and nothing is written; --api-url and --token are required (2).
    const other = tempDir(t);
    const refused = await backstate(["login", "--api-url", apiUrl, "--token", "a.b.c"], {
      env: { BACKSTATE_HOME: other },
    });
    assert.equal(refused.code, 3, refused.stderr);
    assert.match(refused.stderr, /\(HTTP 403, code token-/);
    assert.ok(!existsSync(join(other, "credentials")));
    const incomplete = await backstate(["login", "--api-url", apiUrl], {
      env: { BACKSTATE_HOME: other },
    });
    assert.equal(incomplete.code, 2);
    assert.match(incomplete.stderr, /login needs --api-url URL and --token TOKEN/);
    const wrongOrg = await backstate(
      ["login", "--api-url", apiUrl, "--token", adminToken, "--org", "org_AAAAAAAAAAAAAAAAAAAAAA"],
      { env: { BACKSTATE_HOME: other } },
    );
    assert.equal(wrongOrg.code, 3, wrongOrg.stderr);

    const loggedOut = await backstate(["logout"], { env, cwd: elsewhere });
    assert.equal(loggedOut.code, 0, loggedOut.stderr);
    assert.ok(!existsSync(path));
    const none = await backstate(["machines", "list"], { env, cwd: elsewhere });
    assert.equal(none.code, 3);
    assert.match(none.stderr, /no server to talk to/);
    assert.match(none.stderr, /hint: log in with `backstate login --api-url URL --token TOKEN`/);
  },
);

test(
  "credentials: flags, then the server's login file, then <data-dir>/credentials.json",
  TIMEOUT,
  async (t) => {
    const home = tempDir(t);
    const { apiUrl, adminToken } = server.credentials;
    const env = { BACKSTATE_HOME: home };
    const whoami = async (args: string[] = [], extra: NodeJS.ProcessEnv = {}) =>
      server.run([...args, "whoami", "--json"], { env: { ...env, ...extra } });

    // Only credentials.json: everything from the data dir.
    const fromDataDir = parsed<Whoami>(await whoami());
    assert.deepEqual(fromDataDir.sources, {
      apiUrl: "data-dir",
      token: "data-dir",
      orgId: "data-dir",
    });

    // A login file for the same server wins over credentials.json, even with a token that is wrong.
    const loginPath = join(home, "credentials", `127.0.0.1_${new URL(apiUrl).port}.json`);
    mkdirSync(join(home, "credentials"), { recursive: true });
    writeFileSync(loginPath, JSON.stringify({ ...server.credentials, adminToken: "x.y.z" }), {
      mode: 0o600,
    });
    const stale = await whoami();
    assert.equal(stale.code, 3, stale.stderr);
    assert.match(stale.stderr, /"code":"token-malformed"/);

    // A flag or its variable wins over both.
    const flagged = parsed<Whoami>(await whoami(["--token", adminToken]));
    assert.deepEqual(flagged.sources, { apiUrl: "data-dir", token: "flag", orgId: "login" });
    const viaEnv = parsed<Whoami>(await whoami([], { BACKSTATE_TOKEN: adminToken }));
    assert.equal(viaEnv.sources.token, "env");

    // credentials.json of another server is never sent to this one.
    const foreign = tempDir(t);
    writeFileSync(
      join(foreign, "credentials.json"),
      JSON.stringify({ ...server.credentials, apiUrl: "http://127.0.0.1:1" }),
    );
    const mismatch = await server.run(
      ["--api-url", apiUrl, "--data-dir", foreign, "machines", "list"],
      {
        env: { BACKSTATE_HOME: tempDir(t) },
      },
    );
    assert.equal(mismatch.code, 3, mismatch.stderr);
    assert.match(mismatch.stderr, new RegExp(`no credentials for ${apiUrl.replace(/\./g, "\\.")}`));
  },
);

test(
  "an unreachable server exits 7; a bad flag value exits 2 before anything is sent",
  TIMEOUT,
  async () => {
    const port = await freePort();
    const down = await backstate([
      "--api-url",
      `http://127.0.0.1:${port}`,
      "--token",
      "a.b.c",
      "machines",
      "list",
    ]);
    assert.equal(down.code, 7, down.stderr);
    assert.match(
      down.stderr,
      new RegExp(`cannot reach the server at http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`),
    );
    assert.match(down.stderr, /hint: is it running\?/);

    const usage: [string[], RegExp][] = [
      [["--api-url", "ftp://x", "machines", "list"], /--api-url.*is invalid/],
      [["--org", "acme", "machines", "list"], /--org.*Expected an org id/],
      [["machines", "frobnicate"], /unknown command 'frobnicate'/],
      [["machines", "list", "--bogus"], /unknown option '--bogus'/],
      [["machines", "get"], /required option '-m, --machine <name>' not specified/],
    ];
    for (const [args, message] of usage) {
      const result = await backstate(args);
      assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
      assert.match(result.stderr, message);
    }
  },
);

/** A port nothing listens on (it was free a moment ago). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

const COMMANDS = [
  [],
  ["serve"],
  ["login"],
  ["logout"],
  ["whoami"],
  ["machines"],
  ["machines", "create"],
  ["machines", "list"],
  ["machines", "get"],
  ["machine-versions"],
  ["machine-versions", "create"],
  ["machine-versions", "list"],
  ["machine-versions", "check"],
  ["instances"],
  ["instances", "create"],
  ["instances", "get"],
  ["instances", "list"],
  ["instances", "send-event"],
  ["instances", "pause"],
  ["instances", "resume"],
  ["keys"],
  ["keys", "create"],
  ["keys", "list"],
  ["keys", "delete"],
  ["tokens"],
  ["tokens", "generate"],
  ["identity-providers"],
  ["identity-providers", "upsert"],
  ["identity-providers", "upsert-supabase"],
  ["identity-providers", "upsert-auth0"],
  ["identity-providers", "upsert-cognito"],
  ["identity-providers", "list"],
  ["identity-providers", "delete"],
  ["token-providers"],
  ["token-providers", "upsert"],
  ["token-providers", "list"],
  ["token-providers", "delete"],
  ["smply-credentials"],
];

test(
  "--help on every command; the top help documents credentials and exit codes",
  TIMEOUT,
  async () => {
    const results = await Promise.all(COMMANDS.map((path) => backstate([...path, "--help"])));
    results.forEach((result, index) => {
      const path = COMMANDS[index] ?? [];
      assert.equal(result.code, 0, `${path.join(" ")} --help: ${result.stderr}`);
      assert.match(
        result.stdout,
        new RegExp(`^Usage: backstate${path.length ? ` ${path.join(" ")}` : ""} `, "m"),
      );
      if (path.length > 0) assert.match(result.stdout, /Global Options:[\s\S]*--json/);
    });
    const top = results[0]?.stdout ?? "";
    assert.match(top, /Credentials: each of the server URL, the admin token and the org/);
    for (const code of [0, 1, 2, 3, 4, 5, 6, 7])
      assert.match(top, new RegExp(`^  ${code}  \\S`, "m"));
  },
);

test("serve --help and the README's flags table name the same flags and variables", async () => {
  const readme = readFileSync(join(REPO_ROOT, "README.md"), "utf8");
  const tableStart = readme.indexOf("| flag ");
  const table = readme.slice(tableStart, readme.indexOf("\n\n", tableStart));
  const documented = [...table.matchAll(/^\| `(--[a-z-]+)[^`]*` +\| (?:`(BACKSTATE_[A-Z_]+)`)?/gm)]
    .map(([, flag, variable]) => `${flag} ${variable ?? ""}`.trim())
    .sort();
  const help = (await backstate(["serve", "--help"])).stdout;
  // The command's own options, one block each (a block starts with its flags).
  const own = help.slice(help.indexOf("Options:"), help.indexOf("Global Options:"));
  const offered = own
    .split(/\n(?= {2}(?:-\w, )?--)/)
    .slice(1)
    .map((block) => {
      const flag = /--[a-z-]+/.exec(block)?.[0] ?? block;
      const variable = /env:\s+(BACKSTATE_[A-Z_]+)/.exec(block)?.[1];
      return `${flag} ${variable ?? ""}`.trim();
    })
    .filter((entry) => entry !== "--help")
    .concat("--data-dir BACKSTATE_DATA_DIR") // a global option, which serve uses too
    .sort();
  assert.ok(documented.includes("--max-connections BACKSTATE_MAX_CONNECTIONS"));
  assert.deepEqual(documented, offered);
});

test("colours and the progress indicator only on a terminal; NO_COLOR", TIMEOUT, async (t) => {
  // `script` gives the command a pseudo-terminal; without it, only the off-terminal case is shown.
  assert.equal((await server.run(["machines", "create", "-m", "colours"])).code, 0);
  const plain = await server.run(["machines", "list"]);
  assert.equal(plain.code, 0);
  assert.match(plain.stdout, /^NAME\s+CURRENT VERSION/m);
  assert.ok(!plain.stdout.includes("\x1b["));
  if (spawnSync("script", ["--version"]).status !== 0) {
    t.skip("no `script` command to give the CLI a terminal");
    return;
  }
  const base = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => name !== "NO_COLOR" && name !== "FORCE_COLOR"),
  );
  const onTerminal = (
    extra: NodeJS.ProcessEnv,
    flags: string[] = [],
    command = ["machines", "list"],
  ) => {
    const args = [process.execPath, MAIN, ...command, ...flags];
    const result = spawnSync(
      "script",
      ["-qec", args.map((arg) => JSON.stringify(arg)).join(" "), "/dev/null"],
      {
        env: { ...base, BACKSTATE_DATA_DIR: server.dataDir, BACKSTATE_HOME: server.home, ...extra },
        encoding: "utf8",
      },
    );
    assert.equal(result.status, 0, result.stderr);
    return result.stdout;
  };
  assert.ok(onTerminal({}).includes("\x1b[1mNAME"), "a bold header on a terminal");
  assert.ok(!onTerminal({ NO_COLOR: "1" }).includes("\x1b["), "NO_COLOR turns colours off");
  assert.ok(!onTerminal({}, ["--no-color"]).includes("\x1b["), "so does --no-color");

  // The progress indicator: on stderr, and only on a terminal.
  const check = ["machine-versions", "check", "--file", join(FIXTURES, "toggle.ts")];
  const shown = onTerminal({}, [], check);
  assert.ok(shown.includes("\r\x1b[2K"), "the spinner's line is redrawn in place");
  assert.match(shown, /\S Bundling toggle\.ts with esbuild/);
  assert.match(shown, /Checking the exports of toggle\.ts/);
  const quiet = await server.run(check);
  assert.equal(quiet.code, 0, quiet.stderr);
  assert.equal(quiet.stderr, "", "no progress off a terminal");
});

test(
  "smply-credentials writes the session file and default org smply reads",
  TIMEOUT,
  async (t) => {
    const home = tempDir(t);
    const written = parsed<{
      credentialsPath: string;
      defaultOrgPath: string;
      orgId: string;
      expiresAt: string;
    }>(await server.run(["smply-credentials", "--home", home, "--json"]));
    const credentialsPath = join(home, ".smply", "credentials");
    assert.equal(written.credentialsPath, credentialsPath);
    assert.equal(statSync(credentialsPath).mode & 0o777, 0o600);
    assert.equal(statSync(join(home, ".smply")).mode & 0o777, 0o700);
    const session = JSON.parse(readFileSync(credentialsPath, "utf8")) as Record<string, unknown>;
    assert.equal(session.access_token, server.credentials.adminToken);
    assert.equal(typeof session.refresh_token, "string");
    assert.ok((session.expires_at as number) > Date.now() / 1000 + 86_400, "far in the future");
    assert.equal(
      readFileSync(join(home, ".smply", "default-org"), "utf8"),
      server.credentials.orgId,
    );

    // Without --home: $HOME.
    const userHome = tempDir(t);
    assert.equal((await server.run(["smply-credentials"], { env: { HOME: userHome } })).code, 0);
    assert.ok(existsSync(join(userHome, ".smply", "credentials")));
  },
);
