// CPU time of a process and its descendants (the server and its sandbox processes), read from
// Linux's /proc; elsewhere it answers NaN and the report leaves the figure out.
import { readdirSync, readFileSync } from "node:fs";

const TICKS_PER_SECOND = 100;

/** Seconds of CPU `pid` itself has used (all its threads); throws once it has exited. */
export function ownSeconds(pid: number): number {
  // Fields after the command name (which may hold spaces) start at state; utime, stime are 14, 15.
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    const text = readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").trim();
    if (text) children.push(...text.split(" ").map(Number));
  }
  return children;
}

/** Seconds of CPU used by the live processes below `pid` (not `pid` itself). */
export function descendantsSeconds(pid: number): number {
  let total = 0;
  for (const child of childrenOf(pid)) {
    try {
      total += ownSeconds(child) + descendantsSeconds(child);
    } catch {
      // It exited while we looked.
    }
  }
  return total;
}

/** Seconds of CPU used so far by `pid` and every live process below it. */
export function treeCpuSeconds(pid: number): number {
  try {
    return ownSeconds(pid) + descendantsSeconds(pid);
  } catch {
    return NaN;
  }
}
