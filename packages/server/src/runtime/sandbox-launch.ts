// How a sandbox process is started: the Node flags that confine it and the files it may read.
// Kept apart from the pool so tests can start exactly this command with other code, to check what
// a sandbox escape would still be denied.
import { existsSync, realpathSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The sandbox entry, bundled with all it imports by scripts/build-sandbox.js into a folder of its
 * own (dist/sandbox/child.js), which is then the only one the process may read.
 */
export const DEFAULT_CHILD_ENTRY = fileURLToPath(
  new URL("../../sandbox/child.js", import.meta.url),
);

export type SandboxLaunch = {
  command: string;
  args: string[];
  env: Record<string, string>;
  /** The one directory the process may read (its own code). */
  readableDir: string;
  /** The data limit (RLIMIT_DATA) the process runs under, in MB; none where it cannot be set. */
  dataLimitMb: number | undefined;
};

// Node 20 names the permission model --experimental-permission; later versions --permission.
const PERMISSION_FLAG = process.allowedNodeEnvironmentFlags.has("--permission")
  ? "--permission"
  : "--experimental-permission";

/**
 * The command for one sandbox process. `entry` is resolved to its real path: the permission model
 * checks real paths, and the server may be reached through a workspace symlink. `maxResidentMb`
 * also bounds the process's writable memory (see withDataLimit).
 */
export function sandboxLaunch(options: {
  entry: string;
  memoryLimitMb: number;
  maxResidentMb: number;
  /** The shell that sets the data limit (tests name a missing one). Default /bin/sh. */
  shell?: string;
}): SandboxLaunch {
  let entry: string;
  try {
    entry = realpathSync(options.entry);
  } catch (error) {
    throw new Error(
      `the sandbox entry ${options.entry} is missing: run packages/server/scripts/build-sandbox.js`,
      { cause: error },
    );
  }
  const readableDir = dirname(entry);
  const nodeArgs = [
    PERMISSION_FLAG,
    // Only the sandbox's own code (one bundle in the default build). Node reads the
    // package.json scopes above it internally, which the permission model does not gate; the
    // adapter, the XState builds and bundles arrive as messages, so no other path is needed.
    `--allow-fs-read=${readableDir}`,
    // No --allow-fs-write, --allow-child-process, --allow-worker: all denied.
    "--no-addons",
    `--max-old-space-size=${options.memoryLimitMb}`,
    // The host realm refuses eval/new Function, which closes `hostFn.constructor.constructor`.
    "--disallow-code-generation-from-strings",
    // The host realm's built-ins are frozen by the sandbox itself as it starts, not with
    // --frozen-intrinsics, which slows every vm context's built-ins (sandbox/freeze-intrinsics.ts).
    // Machine code reaches Buffer: allocUnsafe must not hand it memory other versions' data
    // was in (bodies host code decoded for them). See sandbox/buffer-pool.ts for the pool.
    "--zero-fill-buffers",
    "--experimental-vm-modules",
    // Permission and vm modules each print a warning on every start.
    "--disable-warning=ExperimentalWarning",
    entry,
  ];
  return {
    ...withDataLimit(nodeArgs, options.maxResidentMb, options.shell ?? "/bin/sh"),
    // Nothing of the server's environment (secrets, NODE_OPTIONS) reaches the sandbox.
    env: { NODE_ENV: "production" },
    readableDir,
  };
}

/**
 * Runs node with its data limit (RLIMIT_DATA) at `maxResidentMb`, on Linux. The heap cap leaves
 * out ArrayBuffers and WebAssembly memories, and the pool reads a process's resident memory only
 * once per heartbeat: in between, machine code could fill gigabytes (a call, a timer, a service),
 * enough to push the host into its OOM killer. Since Linux 4.7 RLIMIT_DATA counts every private
 * writable mapping, so an allocation past it fails at once, in the process that asked: a RangeError
 * to machine code ("Array buffer allocation failed", a WebAssembly.Memory that cannot grow), or an
 * abort if V8's own heap cannot grow. RLIMIT_AS would count V8's reservations too (a WebAssembly
 * memory reserves 10 GB of address space, guard pages included) and break WebAssembly; the data
 * limit counts none of those, only memory that can be written. It also counts mappings not yet
 * touched (thread stacks, fresh ArrayBuffers), so a process stays a little below the resident cap,
 * which the pool still checks, for what this does not count.
 *
 * Node cannot set a limit on a child, so a shell sets it and then becomes node (same pid); the
 * limit is hard, and machine code has no way to raise it. If the shell cannot set it, the
 * sandbox does not start; where there is no shell at all, it starts without the limit. The shell unsets the working directory it exports (the server's); bash
 * as sh still adds its SHLVL.
 */
function withDataLimit(
  nodeArgs: string[],
  maxResidentMb: number,
  shell: string,
): Pick<SandboxLaunch, "command" | "args" | "dataLimitMb"> {
  // Without a shell (a distroless image) the sandboxes still run, bounded by the resident check
  // alone; the pool says so in its log once.
  if (process.platform !== "linux" || !existsSync(shell)) {
    return { command: process.execPath, args: nodeArgs, dataLimitMb: undefined };
  }
  const kilobytes = maxResidentMb * 1024;
  return {
    dataLimitMb: maxResidentMb,
    command: shell,
    args: [
      "-c",
      `unset PWD OLDPWD; ulimit -d ${kilobytes} && exec "$@"`,
      "backstate-sandbox",
      process.execPath,
      ...nodeArgs,
    ],
  };
}
