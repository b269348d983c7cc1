// Where a machine's CPU goes while a benchmark runs, from Linux's /proc: the whole machine's
// busy and idle shares (/proc/stat), the CPU of PostgreSQL's processes, found by name, and a
// thread's time on and waiting for a core (schedstat).
// Elsewhere the readings are NaN and the report says so.
import { readdirSync, readFileSync } from "node:fs";
import { ownSeconds } from "../realtime/cpu.js";

/** The machine's CPU time so far, in seconds summed over its cores, by kind. */
export type MachineTimes = {
  user: number;
  system: number;
  idle: number;
  iowait: number;
  other: number;
};

const TICKS_PER_SECOND = 100;

export function machineTimes(): MachineTimes {
  try {
    // "cpu  user nice system idle iowait irq softirq steal …", in ticks.
    const fields = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/);
    const ticks = fields.slice(1).map(Number);
    const [user = NaN, nice = NaN, system = NaN, idle = NaN, iowait = NaN, ...rest] = ticks;
    const other = rest.slice(0, 3).reduce((sum, ticks) => sum + ticks, 0);
    return {
      user: (user + nice) / TICKS_PER_SECOND,
      system: system / TICKS_PER_SECOND,
      idle: idle / TICKS_PER_SECOND,
      iowait: iowait / TICKS_PER_SECOND,
      other: other / TICKS_PER_SECOND,
    };
  } catch {
    return { user: NaN, system: NaN, idle: NaN, iowait: NaN, other: NaN };
  }
}

export function timesBetween(before: MachineTimes, after: MachineTimes): MachineTimes {
  return {
    user: after.user - before.user,
    system: after.system - before.system,
    idle: after.idle - before.idle,
    iowait: after.iowait - before.iowait,
    other: after.other - before.other,
  };
}

/**
 * Seconds of CPU used so far by each live process whose command line starts "postgres", by pid.
 * Empty where there is no /proc.
 */
function postgresProcessSeconds(): Map<number, number> {
  const seconds = new Map<number, number>();
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return seconds;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (!readFileSync(`/proc/${entry}/cmdline`, "utf8").startsWith("postgres")) continue;
      seconds.set(Number(entry), ownSeconds(Number(entry)));
    } catch {
      // It exited while we looked, or is not ours to read.
    }
  }
  return seconds;
}

/**
 * A counter of the CPU seconds PostgreSQL's processes have used since it was made, read by
 * calling it. Each read adds what every process used since the last read (all of it, for one
 * started since): a plain sum over the live processes would drop, by all they ever used, when
 * some exit (a pool closing its idle connections), and a side measured meanwhile would be
 * credited with less than it cost. What an exiting process used since the last read is lost,
 * which for an idle connection is nothing. NaN without /proc.
 */
export function postgresCpuCounter(): () => number {
  let last = postgresProcessSeconds();
  if (last.size === 0) return () => NaN;
  let total = 0;
  return () => {
    const now = postgresProcessSeconds();
    for (const [pid, seconds] of now) total += seconds - (last.get(pid) ?? 0);
    last = now;
    return total;
  };
}

/**
 * A thread's time on a CPU and waiting for one (runnable, but another task had the core), in
 * seconds so far, from /proc/<pid>/task/<tid>/schedstat (the main thread: tid = pid).
 */
export function threadSchedSeconds(pid: number, tid = pid): { running: number; waiting: number } {
  try {
    const [running = NaN, waiting = NaN] = readFileSync(
      `/proc/${pid}/task/${tid}/schedstat`,
      "utf8",
    )
      .trim()
      .split(/\s+/)
      .map(Number);
    return { running: running / 1e9, waiting: waiting / 1e9 };
  } catch {
    return { running: NaN, waiting: NaN };
  }
}
