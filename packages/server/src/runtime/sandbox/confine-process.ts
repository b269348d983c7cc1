// What machine code could do with `process` if it ever got hold of it, taken away once the
// sandbox process has started. harden.ts is the first line: it keeps host objects out of reach.
// This is the second: the permission model already denies files, child processes and workers,
// but not signals, nor Node's modules and bindings. With them, code that escaped could kill the
// server (its parent, run by the same user), turn on its inspector (`_debugProcess` sends it
// SIGUSR1, and the inspector then runs anything sent to it on loopback), or open raw sockets past
// the fetch guard. The sandbox itself needs none of them after start: it exits with process.exit.

/** The members of `process` that reach outside the process. */
const REFUSED = [
  "kill",
  "_kill",
  "_debugProcess",
  "_debugEnd",
  "getBuiltinModule",
  "binding",
  "_linkedBinding",
  "dlopen",
] as const;

export function confineProcess(target: NodeJS.Process = process): void {
  for (const name of REFUSED) {
    if (!(name in target)) continue;
    Object.defineProperty(target, name, {
      value: () => {
        throw new Error(`process.${name} is not available in the sandbox`);
      },
      writable: false,
      enumerable: false,
      configurable: false,
    });
  }
}
