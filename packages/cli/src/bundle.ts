// From a machine file on disk to the gzipped bundle the upload flow sends: esbuild bundles the
// file into one ES module with XState inlined (whichever XState the file's own project resolves,
// v4 or v5), then a separate Node process (permission model on: no file system, no child
// processes) loads the bundle and reports its exports. The CLI never runs machine code itself.
import { spawn } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, extname, join, relative, resolve } from "node:path";
import { isBuiltin } from "node:module";
import { gzipSync } from "node:zlib";
import type { BuildFailure, Message, Metafile } from "esbuild";
import { CliError, EXIT_INVALID_MACHINE, EXIT_USAGE } from "./errors.js";
import { formatBytes, type Progress } from "./output.js";

/** The server's limits (and State Backed's): gzipped as sent, and unzipped. */
export const MAX_GZIPPED_BYTES = 1_000_000;
export const MAX_SOURCE_BYTES = 10_000_000;
const CHECK_TIMEOUT_MS = 15_000;

export const MACHINE_EXTENSIONS = [".ts", ".mts", ".cts", ".tsx", ".js", ".mjs", ".cjs", ".jsx"];

export type BuiltMachine = {
  file: string;
  code: string;
  gzipped: Uint8Array;
  bytes: number;
  gzippedBytes: number;
  /** The XState the machine is built with: 4 or 5, and the exact version when found. */
  xstate: { major: 4 | 5; version: string | undefined };
  machineId: string | undefined;
  exports: string[];
};

const EXAMPLE = `for example:
  import { createMachine } from "xstate";
  export default createMachine({ initial: "off", states: { off: { on: { toggle: "on" } }, on: {} } });
  export const allowRead = ({ machineInstanceName, authContext }) => machineInstanceName === authContext.sub;
  export const allowWrite = ({ machineInstanceName, authContext }) => machineInstanceName === authContext.sub;`;

/** Bundles, checks and gzips `file`; throws a CliError (exit 6) saying what is wrong with it. */
export async function buildMachine(file: string, progress?: Progress): Promise<BuiltMachine> {
  const path = resolve(file);
  checkFile(file, path);
  const name = basename(path);

  progress?.step(`Bundling ${name} with esbuild`);
  const { code, metafile } = await bundle(file, path);
  const bytes = Buffer.byteLength(code);
  if (bytes > MAX_SOURCE_BYTES) {
    throw invalid(
      `the bundle of ${file} is ${formatBytes(bytes)}; the server takes ${formatBytes(MAX_SOURCE_BYTES)} at most`,
    );
  }

  progress?.step(`Checking the exports of ${name}`);
  const report = await checkBundle(code, file);
  const gzipped = gzipSync(code);
  if (gzipped.byteLength > MAX_GZIPPED_BYTES) {
    throw invalid(
      `the bundle of ${file} is ${formatBytes(gzipped.byteLength)} gzipped; the server takes ` +
        `${formatBytes(MAX_GZIPPED_BYTES)} at most`,
    );
  }
  return {
    file,
    code,
    gzipped,
    bytes,
    gzippedBytes: gzipped.byteLength,
    xstate: { major: report.xstate, version: xstateVersion(metafile, dirname(path)) },
    machineId: report.machineId,
    exports: report.exports,
  };
}

function checkFile(file: string, path: string): void {
  if (!existsSync(path)) throw new CliError(`no such file: ${file}`, EXIT_USAGE);
  if (!statSync(path).isFile()) throw new CliError(`not a file: ${file}`, EXIT_USAGE);
  if (!MACHINE_EXTENSIONS.includes(extname(path).toLowerCase())) {
    throw new CliError(
      `${file} is not a machine file: expected a .ts or .js file (${MACHINE_EXTENSIONS.join(", ")})`,
      EXIT_USAGE,
    );
  }
}

async function bundle(file: string, path: string): Promise<{ code: string; metafile: Metafile }> {
  const { build } = await import("esbuild");
  try {
    const result = await build({
      entryPoints: [path],
      absWorkingDir: dirname(path),
      bundle: true,
      write: false,
      metafile: true,
      // As State Backed's CLI: a browser-like target, so Node built-ins fail here, not on the
      // server; one minified ES module; function names kept for readable stack traces.
      platform: "browser",
      format: "esm",
      target: "es2022",
      minify: true,
      keepNames: true,
      legalComments: "none",
      define: { "process.env.NODE_ENV": '"production"' },
      drop: ["debugger"],
      logLevel: "silent",
    });
    const output = result.outputFiles[0];
    if (!output) throw invalid(`esbuild produced nothing for ${path}`);
    return { code: output.text, metafile: result.metafile };
  } catch (error) {
    const failure = error as Partial<BuildFailure>;
    if (!Array.isArray(failure.errors)) throw error;
    throw bundleError(file, path, failure.errors);
  }
}

function bundleError(file: string, path: string, errors: Message[]): CliError {
  const shown = errors.slice(0, 5).map((message) => {
    const where = message.location
      ? `${relative(process.cwd(), resolve(dirname(path), message.location.file))}:` +
        `${message.location.line}:${message.location.column + 1}: `
      : "";
    const source = message.location?.lineText ? `\n    ${message.location.lineText.trim()}` : "";
    return `  ${where}${message.text}${source}`;
  });
  const more = errors.length > shown.length ? `\n  … and ${errors.length - shown.length} more` : "";
  const text = errors.map((message) => message.text).join("\n");
  let hint = "fix the errors above; the file is bundled with esbuild like any ES module";
  if (/Could not resolve "xstate"/.test(text)) {
    hint =
      "install XState in the machine's project (`npm install xstate` for v5, `npm install xstate@4` for v4): " +
      "it is resolved from the machine file's folder and bundled with it";
  } else if (importsBuiltin(text)) {
    hint = "machines run in a sandbox without Node's built-in modules: remove that import";
  } else if (/Could not resolve/.test(text)) {
    hint = "install the missing package in the machine's project, or fix the import path";
  }
  return new CliError(
    `cannot bundle ${file}:\n${shown.join("\n")}${more}`,
    EXIT_INVALID_MACHINE,
    hint,
  );
}

function importsBuiltin(text: string): boolean {
  return [...text.matchAll(/Could not resolve "([^"]+)"/g)].some(([, specifier = ""]) =>
    isBuiltin(specifier),
  );
}

/** The version of the `xstate` package that went into the bundle, from esbuild's inputs. */
function xstateVersion(metafile: Metafile, workingDir: string): string | undefined {
  const roots = new Set<string>();
  for (const input of Object.keys(metafile.inputs)) {
    const match = /^(.*node_modules[\\/](?:@[^\\/]+[\\/])?[^\\/]+)[\\/]/.exec(
      resolve(workingDir, input),
    );
    if (match?.[1]) roots.add(match[1]);
  }
  for (const root of roots) {
    try {
      const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
        name?: string;
        version?: string;
      };
      if (manifest.name === "xstate") return manifest.version;
    } catch {
      // Not a package root: keep looking.
    }
  }
  return undefined;
}

type CheckReport = {
  loaded: boolean;
  error?: string;
  exports: string[];
  xstate: 4 | 5 | null;
  machineId?: string;
  problems: string[];
};

const MARKER = "@@backstate-check@@";

// Runs in the child: reads the bundle from stdin, imports it, reports on its exports. Node's own
// globals are gone before the import, as the server's sandbox has none of them (only web
// standard ones): a bundle that reads `process.env` at load fails here as it would there.
const CHECK_SCRIPT = `
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const url = "data:text/javascript;base64," + Buffer.concat(chunks).toString("base64");
const stdout = process.stdout;
const exit = process.exit.bind(process);
for (const name of ["process", "Buffer", "global", "setImmediate", "clearImmediate"]) {
  delete globalThis[name];
}
const report = (value) => stdout.write("\\n${MARKER}" + JSON.stringify(value) + "\\n");
let ns;
try {
  ns = await import(url);
} catch (error) {
  const text = error instanceof Error ? error.name + ": " + error.message : String(error);
  report({ loaded: false, error: text, exports: [], xstate: null, problems: [] });
  exit(0);
}
const problems = [];
const machine = ns.default;
let xstate = null;
let machineId;
const isV5 = (m) => typeof m === "object" && m !== null && typeof m.getInitialSnapshot === "function" && typeof m.restoreSnapshot === "function";
const isV4 = (m) => typeof m === "object" && m !== null && m.__xstatenode === true && typeof m.transition === "function";
if (!("default" in ns) || machine === undefined) problems.push("no-default");
else if (isV5(machine)) xstate = 5;
else if (isV4(machine)) xstate = 4;
else problems.push("default-not-machine");
if (xstate !== null) {
  try { void machine.definition; machineId = typeof machine.id === "string" ? machine.id : undefined; }
  catch (error) { problems.push("definition-throws:" + String(error && error.message ? error.message : error)); }
}
for (const name of ["allowRead", "allowWrite"]) {
  if (!(name in ns)) problems.push("no-" + name);
  else if (typeof ns[name] !== "function") problems.push(name + "-not-function");
}
report({ loaded: true, exports: Object.keys(ns), xstate, machineId, problems });
process.exit(0);
`;

function permissionFlag(): string {
  return process.allowedNodeEnvironmentFlags.has("--permission")
    ? "--permission"
    : "--experimental-permission";
}

async function checkBundle(
  code: string,
  file: string,
): Promise<{ xstate: 4 | 5; machineId: string | undefined; exports: string[] }> {
  const report = await runCheck(code);
  if (!report.loaded) {
    throw invalid(
      `${file} throws while loading: ${firstLines(report.error ?? "unknown error")}`,
      "a machine file should only define the machine and its authorizers; move work into actions and services",
    );
  }
  const problems = report.problems.map(describeProblem);
  if (problems.length > 0 || report.xstate === null) {
    throw invalid(
      `${file} cannot be uploaded:\n${problems.map((problem) => `  - ${problem}`).join("\n")}`,
      `a machine file exports the machine as default and allowRead and allowWrite functions; ${EXAMPLE}`,
    );
  }
  return {
    xstate: report.xstate,
    machineId: report.machineId,
    exports: report.exports,
  };
}

function describeProblem(problem: string): string {
  if (problem === "no-default") {
    return "it has no default export: `export default createMachine({ … })`";
  }
  if (problem === "default-not-machine") {
    return "its default export is not an XState v4 or v5 machine (made with createMachine or setup().createMachine)";
  }
  if (problem.startsWith("definition-throws:")) {
    return `its machine's definition throws: ${problem.slice("definition-throws:".length)}`;
  }
  const missing = /^no-(allowRead|allowWrite)$/.exec(problem);
  if (missing) {
    return `it does not export ${missing[1]}: \`export const ${missing[1]} = (args) => …\` (return true to allow)`;
  }
  const notFunction = /^(allowRead|allowWrite)-not-function$/.exec(problem);
  if (notFunction) return `its ${notFunction[1]} export is not a function`;
  return problem;
}

function runCheck(code: string): Promise<CheckReport> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(
      process.execPath,
      [
        permissionFlag(),
        "--no-warnings",
        "--max-old-space-size=256",
        "--input-type=module",
        "--eval",
        CHECK_SCRIPT,
      ],
      {
        stdio: ["pipe", "pipe", "pipe"],
        // Only what XState reads; nothing of the user's environment (tokens) reaches the bundle.
        env: { NODE_ENV: "production" },
      },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill("SIGKILL"), CHECK_TIMEOUT_MS);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (exitCode, signal) => {
      clearTimeout(timer);
      const line = stdout
        .split("\n")
        .reverse()
        .find((candidate) => candidate.startsWith(MARKER));
      if (line !== undefined) {
        // The bundle runs in that process, and can print a line of its own after the marker.
        const report = parseReport(line.slice(MARKER.length));
        if (report !== undefined) resolvePromise(report);
        else reject(invalid("the bundle cannot be checked: it printed a corrupt check report"));
        return;
      }
      const why =
        signal === "SIGKILL"
          ? `it did not finish loading within ${CHECK_TIMEOUT_MS / 1000} s`
          : `loading it ended the process (exit ${exitCode ?? signal})${stderr ? `: ${firstLines(stderr)}` : ""}`;
      reject(invalid(`the bundle cannot be checked: ${why}`));
    });
    child.stdin.on("error", () => {
      // The child may exit before reading everything; the close handler reports it.
    });
    child.stdin.end(code);
  });
}

function parseReport(text: string): CheckReport | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const report = value as Partial<CheckReport> | null;
  const fits =
    typeof report === "object" &&
    report !== null &&
    typeof report.loaded === "boolean" &&
    Array.isArray(report.exports) &&
    Array.isArray(report.problems) &&
    (report.xstate === 4 || report.xstate === 5 || report.xstate === null);
  return fits ? (report as CheckReport) : undefined;
}

function firstLines(text: string): string {
  return text.trim().split("\n").slice(0, 4).join("\n");
}

function invalid(message: string, hint?: string): CliError {
  return new CliError(message, EXIT_INVALID_MACHINE, hint);
}
