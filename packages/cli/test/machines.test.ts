// `backstate machines` and `machine-versions` against a real server: machine files bundled with
// esbuild (XState v5 from TypeScript, XState v4 from JavaScript), checked, gzipped, uploaded; bad
// files refused before anything reaches the server.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import {
  FIXTURES,
  REPO_ROOT,
  parsed,
  projectDir,
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

const version = (pkg: string) =>
  (
    JSON.parse(readFileSync(join(REPO_ROOT, "node_modules", pkg, "package.json"), "utf8")) as {
      version: string;
    }
  ).version;

type Uploaded = {
  machine: string;
  machineVersionId: string;
  current: boolean;
  xstate: { major: number; version: string };
  bytes: number;
  gzippedBytes: number;
};

test(
  "a TypeScript machine (XState v5) is bundled, uploaded and made current",
  TIMEOUT,
  async () => {
    const created = parsed<Uploaded>(
      await server.run([
        "machines",
        "create",
        "--machine",
        "toggle",
        "--file",
        join(FIXTURES, "toggle.ts"),
        "--version-reference",
        "first",
        "--json",
      ]),
    );
    assert.equal(created.machine, "toggle");
    assert.match(created.machineVersionId, /^ver_/);
    assert.equal(created.current, true);
    assert.deepEqual(created.xstate, { major: 5, version: version("xstate") });
    assert.ok(created.gzippedBytes < created.bytes, "the upload is gzipped");

    const { machine } = parsed<{
      machine: { slug: string; currentVersion: { id: string; clientInfo: string } };
    }>(await server.run(["machines", "get", "--machine", "toggle", "--json"]));
    assert.equal(machine.slug, "toggle");
    assert.deepEqual(
      { id: machine.currentVersion.id, clientInfo: machine.currentVersion.clientInfo },
      { id: created.machineVersionId, clientInfo: "first" },
    );
    const { machines } = parsed<{ machines: { slug: string }[] }>(
      await server.run(["machines", "list", "--json"]),
    );
    assert.ok(machines.some((listed) => listed.slug === "toggle"));

    // The uploaded code runs: an instance of it toggles.
    const alice = [
      "--machine",
      "toggle",
      "--instance",
      "alice",
      "--auth-context",
      '{"sub":"alice"}',
    ];
    const first = parsed(await server.run(["instances", "create", ...alice, "--json"]));
    assert.deepEqual([first.state, first.publicContext], ["off", { flips: 0 }]);
    const toggled = parsed(
      await server.run(["instances", "send-event", ...alice, "-e", "toggle", "--json"]),
    );
    assert.deepEqual(
      [toggled.state, toggled.publicContext, toggled.tags],
      ["on", { flips: 1 }, ["lit"]],
    );
  },
);

test(
  "the bundle is one ES module with XState inlined (machine-versions check)",
  TIMEOUT,
  async (t) => {
    const out = join(tempDir(t), "bundle.js");
    const checked = parsed<{ xstate: { major: number }; exports: string[] }>(
      await server.run([
        "machine-versions",
        "check",
        "--file",
        join(FIXTURES, "toggle.ts"),
        "--out",
        out,
        "--json",
      ]),
    );
    assert.equal(checked.xstate.major, 5);
    assert.deepEqual(checked.exports, ["allowRead", "allowWrite", "default"]);
    const code = readFileSync(out, "utf8");
    // (assert.ok, not doesNotMatch: the bundle is too long for a failure message.)
    assert.ok(!/\bimport\s*[{*][^;]*?\bfrom\s*["']/.test(code), "no import statement is left");
    assert.ok(!/\bimport\s*\(/.test(code), "no dynamic import either");
    assert.ok(/export\s*\{[^}]*\bas default\b[^}]*\}\s*;?\s*$/.test(code), "an ES module");
  },
);

test(
  "a JavaScript machine (XState v4) takes xstate from its own project; versions add up",
  TIMEOUT,
  async (t) => {
    const project = projectDir(t, 4, {
      "counter.js": readFileSync(join(FIXTURES, "counter-v4.js"), "utf8"),
    });
    const file = join(project, "counter.js");
    const created = parsed<Uploaded>(
      await server.run(["machines", "create", "-m", "counter", "-f", file, "--json"]),
    );
    assert.deepEqual(created.xstate, { major: 4, version: version("xstate4") });

    const owner = ["-m", "counter", "-i", "c1", "-a", '{"sub":"c1"}'];
    const started = parsed(await server.run(["instances", "create", ...owner, "--json"]));
    assert.deepEqual([started.state, started.publicContext], ["counting", { count: 0 }]);
    const added = parsed(
      await server.run([
        "instances",
        "send-event",
        ...owner,
        "-e",
        '{"type":"add","n":2}',
        "--json",
      ]),
    );
    assert.deepEqual(added.publicContext, { count: 2 });

    // A second version, not made current, then a third that is.
    const second = parsed<Uploaded>(
      await server.run([
        "machine-versions",
        "create",
        "-m",
        "counter",
        "-f",
        file,
        "-r",
        "v2",
        "--json",
      ]),
    );
    assert.equal(second.current, false);
    const third = parsed<Uploaded>(
      await server.run([
        "machine-versions",
        "create",
        "--machine",
        "counter",
        "--file",
        file,
        "--make-current",
        "--json",
      ]),
    );
    assert.equal(third.current, true);
    const listed = parsed<{
      versions: { id: string; clientInfo: string }[];
      currentVersionId: string;
    }>(await server.run(["machine-versions", "list", "-m", "counter", "--json"]));
    assert.deepEqual(
      listed.versions.map((v) => v.id),
      [created.machineVersionId, second.machineVersionId, third.machineVersionId],
    );
    assert.equal(listed.versions[1]?.clientInfo, "v2");
    assert.equal(listed.currentVersionId, third.machineVersionId);

    const table = await server.run(["machine-versions", "list", "-m", "counter"]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^\s+VERSION\s+REFERENCE\s+CREATED$/m);
    assert.match(table.stdout, new RegExp(`^\\*\\s+${third.machineVersionId}\\s`, "m"));
  },
);

const GOOD_TAIL = `
export const allowRead = () => true;
export const allowWrite = () => true;
`;

const BAD_FILES: { name: string; text: string; xstate?: 4 | 5; message: RegExp }[] = [
  {
    name: "no-default.ts",
    text: `import { createMachine } from "xstate";\nexport const machine = createMachine({});\n${GOOD_TAIL}`,
    message: /no-default\.ts cannot be uploaded:\n\s+- it has no default export/,
  },
  {
    name: "syntax.ts",
    text: `import { createMachine } from "xstate";\nexport default createMachine({ initial: "a" states: {} });\n${GOOD_TAIL}`,
    message: /cannot bundle .*syntax\.ts:\n\s+.*syntax\.ts:2:\d+: Expected "\}" but found "states"/,
  },
  {
    name: "no-allow-read.js",
    text: `import { createMachine } from "xstate";\nexport default createMachine({});\nexport const allowWrite = () => true;\n`,
    message: /it does not export allowRead/,
  },
  {
    name: "not-a-machine.js",
    text: `export default { states: {} };\n${GOOD_TAIL}`,
    message: /its default export is not an XState v4 or v5 machine/,
  },
  {
    name: "throws.js",
    text: `throw new Error("kaboom while loading");\nexport default 1;\n`,
    message: /throws while loading: Error: kaboom while loading/,
  },
  {
    name: "builtin.js",
    text: `import { readFileSync } from "node:fs";\nexport default readFileSync;\n${GOOD_TAIL}`,
    message:
      /Could not resolve "node:fs"[\s\S]*hint: machines run in a sandbox without Node's built-in modules/,
  },
];

test("bad machine files are refused before upload, with exit code 6", TIMEOUT, async (t) => {
  assert.equal((await server.run(["machines", "create", "--machine", "target"])).code, 0);
  const project = projectDir(
    t,
    5,
    Object.fromEntries(BAD_FILES.map(({ name, text }) => [name, text])),
  );
  await Promise.all(
    BAD_FILES.map(async ({ name, message }) => {
      const result = await server.run([
        "machine-versions",
        "create",
        "-m",
        "target",
        "-f",
        join(project, name),
      ]);
      assert.equal(result.code, 6, `${name}: ${result.stderr}`);
      assert.match(result.stderr, message, name);
      assert.equal(result.stdout, "", `${name}: nothing on stdout`);
    }),
  );

  // XState not installed where the machine lives: a message that says to install it.
  const bare = projectDir(t, undefined, {
    "toggle.ts": readFileSync(join(FIXTURES, "toggle.ts"), "utf8"),
  });
  const unresolved = await server.run([
    "machine-versions",
    "create",
    "-m",
    "target",
    "-f",
    join(bare, "toggle.ts"),
  ]);
  assert.equal(unresolved.code, 6, unresolved.stderr);
  assert.match(unresolved.stderr, /Could not resolve "xstate"/);
  assert.match(
    unresolved.stderr,
    /hint: install XState in the machine's project \(`npm install xstate`/,
  );

  // --json: the error as JSON on stderr.
  const json = await server.run([
    "machine-versions",
    "create",
    "-m",
    "target",
    "-f",
    join(project, "no-allow-read.js"),
    "--json",
  ]);
  assert.equal(json.code, 6);
  const { error } = JSON.parse(json.stderr) as {
    error: { message: string; exitCode: number; hint: string };
  };
  assert.equal(error.exitCode, 6);
  assert.match(error.message, /does not export allowRead/);
  assert.match(error.hint, /export default/);

  // Nothing reached the server: no version of target, and no machine for a refused create.
  const { versions } = parsed<{ versions: unknown[] }>(
    await server.run(["machine-versions", "list", "-m", "target", "--json"]),
  );
  assert.deepEqual(versions, []);
  const refused = await server.run([
    "machines",
    "create",
    "-m",
    "never",
    "-f",
    join(project, "syntax.ts"),
  ]);
  assert.equal(refused.code, 6);
  const missing = await server.run(["machines", "get", "-m", "never"]);
  assert.equal(missing.code, 4, missing.stderr);
  assert.match(missing.stderr, /machine never not found \(HTTP 404, code not-found\)/);

  // Not a machine file at all, or no such file: usage errors.
  const wrongKind = await server.run([
    "machine-versions",
    "create",
    "-m",
    "target",
    "-f",
    join(FIXTURES, "..", "..", "package.json"),
  ]);
  assert.equal(wrongKind.code, 2);
  assert.match(wrongKind.stderr, /is not a machine file: expected a \.ts or \.js file/);
  const absent = await server.run(["machine-versions", "create", "-m", "target", "-f", "nope.ts"]);
  assert.equal(absent.code, 2);
  assert.match(absent.stderr, /no such file: nope\.ts/);
});
