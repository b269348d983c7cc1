// What the CLI does when things go wrong around it: a server that answers garbage or drops the
// connection, a list that never ends, a reader slower than the output, a flag with a secret in
// it, an org the token is no member of, a version reference the server would refuse. Each answer
// is a plain message and the README's exit code, and nothing is left half done.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type RequestListener } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, test } from "node:test";
import {
  FIXTURES,
  MAIN,
  backstate,
  projectDir,
  startTestServer,
  tempDir,
  type TestServer,
} from "./support/cli.js";

const TIMEOUT = { timeout: 90_000 };
const STACK = /\n\s+at /;

/** A fake server answering every request with `handler`, closed after the test. */
async function fake(t: { after(fn: () => void): void }, handler: RequestListener): Promise<string> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A fake server answering every request 200 with `body` as JSON. */
function answering(t: { after(fn: () => void): void }, body: string): Promise<string> {
  return fake(t, (_request, response) => {
    response.writeHead(200, { "content-type": "application/json" });
    response.end(body);
  });
}

const flags = (url: string) => ["--api-url", url, "--token", "t", "--org", "org_x"];

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(() => server.close());

test("a 200 whose body is null or empty: a plain message, no stack trace", TIMEOUT, async (t) => {
  for (const body of ["null", ""]) {
    const url = await answering(t, body);
    for (const args of [
      ["machines", "list"],
      ["machines", "get", "-m", "x"],
      ["instances", "get", "-m", "x", "-i", "y"],
    ]) {
      const result = await backstate([...args, ...flags(url)]);
      assert.equal(result.code, 1, `${args.join(" ")}: ${result.stderr}`);
      assert.match(result.stderr, /the server's answer to GET \S+ (has no|is not a JSON object)/);
      assert.doesNotMatch(result.stderr, STACK, result.stderr);
    }
  }
});

test(
  "a server that drops the connection mid-body: exit 7 (cannot be reached), no stack trace",
  TIMEOUT,
  async (t) => {
    const url = await fake(t, (_request, response) => {
      response.writeHead(200, { "content-type": "application/json", "content-length": "1000" });
      response.write('{"machines":[');
      setTimeout(() => response.destroy(), 50);
    });
    const result = await backstate(["machines", "list", ...flags(url)]);
    assert.doesNotMatch(result.stderr, STACK, result.stderr);
    assert.equal(result.code, 7, result.stderr);
  },
);

test(
  "lists: a cursor that never ends is not silently cut at 10,000 pages with exit 0",
  TIMEOUT,
  async (t) => {
    const url = await answering(
      t,
      JSON.stringify({ machines: [{ slug: "x", createdAt: "2020-01-01" }], cursor: "same" }),
    );
    const result = await backstate(["machines", "list", "--json", ...flags(url)]);
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /gave the same cursor again/);
  },
);

test(
  "--json piped into a reader gets the whole document (not cut at 64 KiB)",
  TIMEOUT,
  async (t) => {
    const machines = Array.from({ length: 5000 }, (_, i) => ({
      slug: `m-${i}`,
      createdAt: "2020-01-01T00:00:00Z",
    }));
    const url = await answering(t, JSON.stringify({ machines }));
    const { execFile } = await import("node:child_process");
    const { promisify } = await import("node:util");
    // As `backstate machines list --json | jq …` with a reader a little slower than the writer.
    const { stdout: bytes } = await promisify(execFile)(
      "/bin/sh",
      [
        "-c",
        `"${process.execPath}" "${MAIN}" machines list --json --api-url ${url} --token t | (sleep 0.5; wc -c)`,
      ],
      { encoding: "utf8" },
    );
    const file = await backstate(["machines", "list", "--json", ...flags(url)]);
    assert.equal(
      Number(bytes.trim()),
      Buffer.byteLength(file.stdout),
      "stdout cut short in a pipe",
    );
  },
);

test(
  "--api-url with a user:password is refused as usage (2), and the password is not printed",
  TIMEOUT,
  async () => {
    const result = await backstate([
      "machines",
      "list",
      "--api-url",
      "http://admin:hunter2@127.0.0.1:9",
      "--token",
      "t",
    ]);
    assert.doesNotMatch(result.stderr, /hunter2/, result.stderr);
    assert.equal(result.code, 2, result.stderr);
  },
);

test(
  "whoami checks the org: an org the token is no member of is not reported as fine",
  TIMEOUT,
  async () => {
    const result = await server.run(["whoami", "--org", "org_notamember"]);
    const list = await server.run(["machines", "list", "--org", "org_notamember"]);
    assert.notEqual(list.code, 0);
    assert.notEqual(
      result.code,
      0,
      `whoami exit 0 while machines list exits ${list.code}:\n${result.stdout}`,
    );
  },
);

test(
  "-r longer than the API takes (1024) is a usage error before anything is sent",
  TIMEOUT,
  async () => {
    const create = await server.run([
      "machines",
      "create",
      "-m",
      "longref",
      "--file",
      join(FIXTURES, "toggle.ts"),
      "-r",
      "x".repeat(1025),
    ]);
    const get = await server.run(["machines", "get", "-m", "longref"]);
    assert.equal(
      get.code,
      4,
      `machine longref was created and left without a version:\n${get.stdout}`,
    );
    assert.equal(create.code, 2, create.stderr);
  },
);

test(
  "a refused --base64-key is not repeated in the message (it is a secret); a wrapped one is read",
  TIMEOUT,
  async () => {
    const args = (key: string) => [
      "identity-providers",
      "upsert",
      "--iss",
      "https://id.example.com/",
      "--alg",
      "HS256",
      "--base64-key",
      key,
      "--mapping",
      '{"sub.$":"$.sub"}',
      "--api-url",
      "http://127.0.0.1:9",
      "--token",
      "t",
    ];
    const refused = await backstate(args("s3cr3t-but!not-base64"));
    assert.equal(refused.code, 2, refused.stderr);
    assert.ok(!refused.stderr.includes("s3cr3t"), `the secret is printed:\n${refused.stderr}`);
    // As `base64 key.bin` prints a 64-byte key: wrapped at 76 columns. Read, and sent (nothing
    // listens there: exit 7).
    const wrapped = Buffer.alloc(64, 7)
      .toString("base64")
      .replace(/(.{76})/, "$1\n");
    const sent = await backstate(args(wrapped));
    assert.equal(sent.code, 7, sent.stderr);
  },
);

test(
  "--api-url and --token win: an unreadable credentials.json in the data dir is no crash",
  TIMEOUT,
  async (t) => {
    const url = await answering(t, '{"machines":[]}');
    const cwd = tempDir(t);
    // A directory stands for a file this user cannot read (EISDIR here, EACCES for another's).
    mkdirSync(join(cwd, ".backstate", "credentials.json"), { recursive: true });
    const result = await backstate(["machines", "list", ...flags(url)], { cwd });
    assert.equal(result.code, 0, result.stderr);
    // Without flags, it is named as the reason there is nothing to talk to.
    const alone = await backstate(["machines", "list"], {
      cwd,
      env: { BACKSTATE_HOME: join(cwd, "home") },
    });
    assert.equal(alone.code, 3, alone.stderr);
    assert.match(alone.stderr, /credentials\.json cannot be read \(EISDIR\)/);
    assert.doesNotMatch(alone.stderr, STACK, alone.stderr);
  },
);

test(
  "a malformed credentials.json is reported as malformed, not as missing",
  TIMEOUT,
  async (t) => {
    const dir = tempDir(t);
    writeFileSync(join(dir, "credentials.json"), "{not json");
    const result = await backstate(["machines", "list", "--data-dir", dir], {
      env: { BACKSTATE_HOME: join(dir, "home") },
    });
    assert.equal(result.code, 3, result.stderr);
    assert.match(result.stderr, /credentials\.json is not a credentials file \(malformed\)/);
  },
);

test(
  "a credentials file other users can read is still used, with a warning on stderr (--json too)",
  TIMEOUT,
  async (t) => {
    const url = await answering(t, '{"machines":[]}');
    const dir = tempDir(t);
    const file = join(dir, "credentials.json");
    writeFileSync(file, JSON.stringify({ apiUrl: url, orgId: "org_x", adminToken: "t" }));
    const env = { BACKSTATE_HOME: join(dir, "home") };
    chmodSync(file, 0o600);
    const closed = await backstate(["machines", "list", "--data-dir", dir], { env });
    assert.equal(closed.code, 0, closed.stderr);
    assert.doesNotMatch(closed.stderr, /warning/);
    chmodSync(file, 0o644);
    const open = await backstate(["--json", "machines", "list", "--data-dir", dir], { env });
    assert.equal(open.code, 0, open.stderr);
    assert.deepEqual(JSON.parse(open.stdout), { machines: [] }, "stdout stays the JSON");
    assert.match(open.stderr, /^warning: .*credentials\.json holds an admin token .*\(mode 0644\)/);
    assert.match(open.stderr, /chmod 600 /);
    // A token from --token reads no file: nothing to warn about.
    const flagged = await backstate(["machines", "list", "--data-dir", dir, "--token", "t2"], {
      env,
    });
    assert.equal(flagged.code, 0, flagged.stderr);
    assert.doesNotMatch(flagged.stderr, /warning/);
  },
);

const TOGGLE = readFileSync(join(FIXTURES, "toggle.ts"), "utf8");

test(
  "a machine file that reads Node's `process` at load is refused locally, as the sandbox refuses it: exit 6, no machine made",
  TIMEOUT,
  async (t) => {
    const dir = projectDir(t, 5, {
      "lamp.ts": `${TOGGLE}\nexport const debug = process.env.DEBUG === "1";\n`,
    });
    const check = await server.run(["machine-versions", "check", "--file", join(dir, "lamp.ts")]);
    assert.equal(check.code, 6, check.stdout + check.stderr);
    assert.match(check.stderr, /process is not defined/);
    const create = await server.run([
      "machines",
      "create",
      "-m",
      "procuser",
      "--file",
      join(dir, "lamp.ts"),
    ]);
    assert.equal(create.code, 6, create.stderr);
    const get = await server.run(["machines", "get", "-m", "procuser"]);
    assert.equal(get.code, 4, `the machine was made:\n${get.stdout}`);
  },
);

test(
  "machines create --file: a machine made for a first version the server refuses is deleted again",
  TIMEOUT,
  async (t) => {
    const dir = projectDir(t, 5, { "toggle.ts": TOGGLE });
    for (const deleteStatus of [204, 500]) {
      const deletes: string[] = [];
      const url: string = await fake(t, (request, response) => {
        let body = "";
        request.on("data", (chunk: Buffer) => (body += chunk.toString()));
        request.on("end", () => {
          const route = `${request.method} ${request.url}`;
          const reply = (status: number, value?: unknown) => {
            response.writeHead(status, { "content-type": "application/json" });
            response.end(value === undefined ? undefined : JSON.stringify(value));
          };
          if (route === "POST /machines") reply(204);
          else if (route === "POST /machines/lamp/v?gzip") {
            reply(200, {
              machineVersionId: "x",
              codeUploadUrl: `${url}/upload`,
              codeUploadFields: {},
            });
          } else if (route === "POST /upload") reply(204);
          else if (route === "PUT /machines/lamp/v/x") {
            reply(400, { error: "the bundle failed to load", code: "invalid-parameter" });
          } else if (route === "DELETE /machines/lamp") {
            deletes.push(body);
            reply(deleteStatus, deleteStatus === 204 ? undefined : { error: "down" });
          } else reply(404, { error: route });
        });
      });
      const args = ["machines", "create", "-m", "lamp", "--file", join(dir, "toggle.ts")];
      const result = await backstate([...args, ...flags(url)]);
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /the bundle failed to load/);
      assert.equal(deletes.length, 1, "the machine is deleted once");
      assert.deepEqual(JSON.parse(deletes[0]!), {
        dangerDataWillBeDeletedForever: true,
        // base64url(HMAC-SHA256(key "lamp", "lamp")), as the official client computes it.
        hmacSha256OfMachineNameWithMachineNameKey: createHmac("sha256", "lamp")
          .update("lamp")
          .digest("base64url"),
      });
      if (deleteStatus === 204) assert.match(result.stderr, /machine lamp was deleted again/);
      else assert.match(result.stderr, /warning: machine lamp was made .*deleting it failed/);
    }
  },
);

test(
  "a machine file that corrupts the check's report: exit 6, no stack trace",
  TIMEOUT,
  async (t) => {
    const dir = tempDir(t);
    // The bundle runs in the checking process, and can change how the report is written: not JSON
    // at all, or JSON of another shape.
    for (const tamper of [
      "Object.prototype.toJSON = () => undefined;",
      'Array.prototype.toJSON = function () { return "x"; };',
    ]) {
      writeFileSync(join(dir, "m.js"), `${tamper}\nexport default 1;\n`);
      const result = await backstate(["machine-versions", "check", "--file", join(dir, "m.js")]);
      assert.equal(result.code, 6, `${tamper}\n${result.stderr}`);
      assert.match(result.stderr, /corrupt check report/);
      assert.doesNotMatch(result.stderr, /SyntaxError|TypeError|\n\s+at /, result.stderr);
    }
  },
);

test("--json: a usage error goes to stderr as {error:{…}} too", TIMEOUT, async () => {
  for (const args of [
    ["machines", "get", "--json"],
    ["instances", "create", "-m", "a", "-i", "b", "--context", "[1]", "--json"],
    ["bogus", "--json"],
  ]) {
    const result = await backstate(args);
    assert.equal(result.code, 2, result.stderr);
    const parsed = JSON.parse(result.stderr) as { error?: { message?: string; exitCode?: number } };
    assert.equal(parsed.error?.exitCode, 2, `${args.join(" ")}: ${result.stderr}`);
    assert.ok((parsed.error?.message ?? "") !== "", result.stderr);
  }
  // Without --json, commander's own text, as before.
  const plain = await backstate(["machines", "get"]);
  assert.match(plain.stderr, /^error: required option/);
});

test(
  "keys create with a blank --name is a usage error before anything is sent",
  TIMEOUT,
  async () => {
    for (const name of ["", "   "]) {
      const result = await server.run(["keys", "create", "--name", name, "--use", "production"]);
      assert.equal(result.code, 2, result.stderr);
    }
    const keys = await server.run(["keys", "list", "--json"]);
    const listed = (JSON.parse(keys.stdout) as { keys: Array<{ name: string }> }).keys;
    assert.ok(
      listed.every((key) => key.name.trim() !== ""),
      `a key with a blank name was made: ${keys.stdout}`,
    );
  },
);
