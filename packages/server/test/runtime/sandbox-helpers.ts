// Shared helpers for the sandbox pool tests: the test adapter, bundles built with esbuild, targets,
// a logger that remembers, and a bounded wait.
import { build } from "esbuild";
import { after, before } from "node:test";
import { fileURLToPath } from "node:url";
import type { SandboxCallOptions, SandboxTarget } from "../../src/runtime/sandbox-contract.js";
import { SandboxPool } from "../../src/runtime/sandbox-pool.js";
import type { LogFields, SandboxLogger } from "../../src/runtime/sandbox-logger.js";

// Compiled tests run from dist/test/runtime/; fixtures stay in the source tree.
const FIXTURES = new URL("../../../test/runtime/fixtures/", import.meta.url);

export const TEST_ADAPTER = fileURLToPath(new URL("test-adapter.js", FIXTURES));
export const GARBAGE_CHILD = fileURLToPath(new URL("garbage-child/child.js", FIXTURES));
export const CONFINEMENT_PROBE = fileURLToPath(new URL("confinement-probe/entry.mjs", FIXTURES));
export const INTRINSICS_PROBE = fileURLToPath(new URL("intrinsics-probe/entry.mjs", FIXTURES));
export const SERVER_DIR = fileURLToPath(new URL("../../../", import.meta.url));

let nextVersion = 1;

/** A target with a fresh version id; `loads` counts how often the pool asked for the code. */
export function target(
  orgId: string,
  code: string,
  versionId = `ver_${nextVersion++}`,
): SandboxTarget & { loads: number } {
  const result = {
    orgId,
    versionId,
    loads: 0,
    loadCode: () => {
      result.loads++;
      return Promise.resolve(code);
    },
  };
  return result;
}

/** Calls a named export of the bundle through the test adapter and parses its JSON answer. */
export async function callExport(
  pool: SandboxPool,
  at: SandboxTarget,
  name: string,
  args: unknown[] = [],
  options?: SandboxCallOptions,
): Promise<unknown> {
  return JSON.parse(
    await pool.call(at, "call-export", JSON.stringify({ name, args }), options),
  ) as unknown;
}

/** Calls one version's export by name, with no arguments. */
export type ExportCaller = (name: string) => Promise<unknown>;

/**
 * An attacker's and a victim's version of one org, in one sandbox process (a pool of one, started
 * before the file's tests and closed after them), for tests of what one version's code can do to
 * another's through what the process shares.
 */
export function versionsSharingAProcess(
  attackerCode: string,
  victimCode: string,
): { attacker: ExportCaller; victim: ExportCaller } {
  let pool: SandboxPool;
  before(() => {
    pool = new SandboxPool({ adapterPath: TEST_ADAPTER, size: 1, logger: memoryLogger() });
  });
  after(() => pool.close());
  const options = { affinity: "shared" };
  const callerOf = (at: SandboxTarget) => (name: string) => callExport(pool, at, name, [], options);
  return {
    attacker: callerOf(target("org_evil", attackerCode)),
    victim: callerOf(target("org_evil", victimCode)),
  };
}

/** Bundles `source` (which may import xstate) with xstate inlined, as users' tools do. */
export async function bundleInline(source: string): Promise<string> {
  const result = await build({
    stdin: { contents: source, resolveDir: SERVER_DIR, loader: "ts" },
    bundle: true,
    write: false,
    format: "esm",
    platform: "neutral",
    mainFields: ["module", "main"],
    conditions: ["module", "import"],
    define: { "process.env.NODE_ENV": '"production"' },
    logLevel: "silent",
  });
  const file = result.outputFiles[0];
  if (file === undefined) throw new Error("esbuild produced nothing");
  return file.text;
}

export type LogEntry = { level: "info" | "warn" | "error"; message: string; fields?: LogFields };

/** A logger that keeps every entry, for assertions. */
export function memoryLogger(): SandboxLogger & { entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  return {
    entries,
    info: (message, fields) => entries.push({ level: "info", message, fields }),
    warn: (message, fields) => entries.push({ level: "warn", message, fields }),
    error: (message, fields) => entries.push({ level: "error", message, fields }),
  };
}

/** Polls `check` until it holds; fails after `timeoutMs` (generous: CI machines are noisy). */
export async function waitFor(
  check: () => boolean,
  what: string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The error code a promise rejects with (fails if it resolves). */
export async function rejectionCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    return (error as { code?: string }).code ?? `uncoded: ${String(error)}`;
  }
  throw new Error("expected a rejection");
}
