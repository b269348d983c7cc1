// Kills a test file's process with everything it started: its process group, and (on Linux)
// every descendant, since a child that made a group of its own (as sandboxes do) is outside it.
import { readdirSync, readFileSync } from "node:fs";

/** Descendants of `pid`, read from /proc; none where /proc is not there. */
function descendantsOf(pid) {
  const childrenOf = new Map();
  let entries;
  try {
    entries = readdirSync("/proc");
  } catch {
    return [];
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // it ended while we looked
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so read after the last ")".
    const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    const siblings = childrenOf.get(parent) ?? [];
    siblings.push(Number(entry));
    childrenOf.set(parent, siblings);
  }
  const found = [];
  const pending = [pid];
  while (pending.length > 0) {
    for (const child of childrenOf.get(pending.pop()) ?? []) {
      found.push(child);
      pending.push(child);
    }
  }
  return found;
}

function killQuietly(target) {
  try {
    process.kill(target, "SIGKILL");
  } catch {
    // already gone
  }
}

/**
 * SIGKILLs `pid`'s process group (`pid` must lead it: spawned with `detached: true`) and every
 * descendant. The descendants are listed first: once their parents die they are reparented
 * and can no longer be told apart.
 */
export function killProcessTree(pid) {
  const descendants = descendantsOf(pid);
  killQuietly(-pid);
  for (const descendant of descendants) killQuietly(descendant);
}

/** Kills what is left of an ended process's group (a grandchild it did not wait for). */
export function killProcessGroup(pid) {
  killQuietly(-pid);
}
