// What bench/profile and the counting it loads into a server (event-costs.ts) agree on: what may
// be counted, where a process writes its totals, and what the file holds. Kept apart from
// event-costs.ts, whose import starts counting in the process that imports it.

/** What can be counted, one per run (see event-costs.ts). */
export type CostKind = "promises" | "heap";

/** What the file holds: the total since the process started counting, and how many writes. */
export type EventCosts = { count: number; written: number };

/** The kind BENCH_COSTS names; undefined when it names none. Throws on anything else. */
export function costKindOf(value: string | undefined): CostKind | undefined {
  if (value === undefined || value === "") return undefined;
  if (value === "promises" || value === "heap") return value;
  throw new Error(`BENCH_COSTS must be promises or heap, not ${value}`);
}

/** Where the process `pid` writes its totals, under the base BENCH_COSTS_FILE names. */
export function costsFile(base: string, pid: number): string {
  return `${base}.${pid}`;
}
