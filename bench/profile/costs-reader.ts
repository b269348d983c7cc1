// bench/profile's side of event-costs.ts: starts a server counting its costs, and reads the
// totals each server process has counted so far.
import { readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { randomBytes } from "node:crypto";
import type { Child } from "../http/child.js";
import { costKindOf, costsFile, type CostKind, type EventCosts } from "./costs-file.js";

const base = join(tmpdir(), `bench-costs-${randomBytes(4).toString("hex")}`);
const preload = new URL("./event-costs.js", import.meta.url).href;

/** What BENCH_COSTS asks to count, if anything (see event-costs.ts). */
export function costKindAsked(): CostKind | undefined {
  return costKindOf(process.env.BENCH_COSTS);
}

/**
 * Runs `start` (a fork of a server) with event-costs.ts loaded into the process it starts, which
 * reads BENCH_COSTS from the environment it inherits.
 */
export async function countingCosts<T>(start: () => Promise<Child<T>>): Promise<Child<T>> {
  const saved = { NODE_OPTIONS: process.env.NODE_OPTIONS, file: process.env.BENCH_COSTS_FILE };
  process.env.NODE_OPTIONS = `${saved.NODE_OPTIONS ?? ""} --import=${preload}`.trim();
  process.env.BENCH_COSTS_FILE = base;
  try {
    const child = await start();
    return {
      ...child,
      close: async () => {
        await child.close();
        await rm(costsFile(base, child.pid), { force: true });
      },
    };
  } finally {
    restore("NODE_OPTIONS", saved.NODE_OPTIONS);
    restore("BENCH_COSTS_FILE", saved.file);
  }
}

function restore(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}

/** The counts of the processes `pids`, summed: each is asked (SIGUSR2) and its answer awaited. */
export async function readCount(pids: readonly number[]): Promise<number> {
  const all = await Promise.all(pids.map((pid) => readOne(pid)));
  return all.reduce((sum, costs) => sum + costs.count, 0);
}

async function readOne(pid: number): Promise<EventCosts> {
  const file = costsFile(base, pid);
  const previous = (await tryRead(file))?.written ?? 0;
  process.kill(pid, "SIGUSR2");
  for (let waited = 0; waited < 5_000; waited += 20) {
    const costs = await tryRead(file);
    if (costs !== undefined && costs.written > previous) return costs;
    await sleep(20);
  }
  throw new Error(`server ${pid} did not write its costs to ${file}`);
}

async function tryRead(file: string): Promise<EventCosts | undefined> {
  try {
    return JSON.parse(await readFile(file, "utf8")) as EventCosts;
  } catch {
    return undefined; // not written yet, or caught half-written: asked again
  }
}
