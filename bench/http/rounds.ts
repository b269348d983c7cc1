// What the HTTP benchmarks share: the toggle sender, and measuring several sides in rotating
// rounds (each round starts with the next side, so drift on a shared machine hits all alike),
// each side then summed up by the median of its rounds.
import { runLoadFor, type LoadResult } from "../engine/load.js";
import { instanceName } from "../engine/toggle-machine.js";
import type { LoadClient } from "./lean-client.js";

export type Side = {
  name: string;
  send: () => Promise<unknown>;
  /**
   * Meters of the CPU seconds the side's processes have spent so far, by name (its server's main
   * thread, its sandboxes, the database), for those measured.
   */
  cpuMeters?: Record<string, () => number>;
};

/** One round of one side, with each of its meters' CPU seconds over the round. */
export type RoundResult = LoadResult & { cpuSeconds?: Record<string, number> };

const toggle = { event: "toggle" };

/**
 * How a side with several nodes spreads its events: to each node in turn (a round-robin load
 * balancer), or each instance's always to the same node (a balancer that hashes the instance's path).
 */
export type Routing = "rotate" | "by-instance";

/**
 * A side's send: POST one toggle to a random one of `instances` instances, through `clients` as
 * `routing` says, which must answer 200.
 */
export function toggleSender(
  clients: LoadClient[],
  headers: Record<string, string>,
  instances: number,
  routing: Routing = "rotate",
): () => Promise<unknown> {
  let next = 0;
  return async () => {
    const instance = Math.floor(Math.random() * instances);
    const client = clients[(routing === "rotate" ? next++ : instance) % clients.length]!;
    const path = `/machines/toggle/i/${instanceName(instance)}/events`;
    const reply = await client.call("POST", path, toggle, headers);
    if (reply.status !== 200) throw new Error(`POST ${path}: ${reply.status} ${reply.body}`);
  };
}

export type RoundOptions = {
  rounds: number;
  seconds: number;
  warmupSeconds: number;
  concurrency: number;
};

/** Warms every side up, then runs the rounds; answers each side's results, by name. */
export async function runRounds(
  sides: readonly Side[],
  options: RoundOptions,
): Promise<Map<string, RoundResult[]>> {
  const { rounds, seconds, warmupSeconds, concurrency } = options;
  for (const side of sides) await runLoadFor(warmupSeconds, concurrency, side.send);
  const results = new Map<string, RoundResult[]>(sides.map((side) => [side.name, []]));
  for (let round = 0; round < rounds; round++) {
    const order = sides.map((_, i) => sides[(i + round) % sides.length]!);
    for (const side of order) {
      const meters = Object.entries(side.cpuMeters ?? {});
      const before = meters.map(([, read]) => read());
      const result: RoundResult = await runLoadFor(seconds, concurrency, side.send);
      if (meters.length > 0) {
        result.cpuSeconds = Object.fromEntries(
          meters.map(([name, read], i) => [name, read() - before[i]!]),
        );
      }
      results.get(side.name)!.push(result);
    }
  }
  return results;
}

/**
 * The median over the rounds of a meter's CPU per event, in µs; undefined when the side was not
 * measured by it (or could not be: no /proc).
 */
export function cpuMicrosPerEvent(results: RoundResult[], meter: string): number | undefined {
  const perEvent = results.flatMap((r) => {
    const seconds = r.cpuSeconds?.[meter];
    return seconds === undefined || !Number.isFinite(seconds) || r.events === 0
      ? []
      : [(seconds * 1e6) / r.events];
  });
  return perEvent.length === 0 ? undefined : median(perEvent);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

/** The median of each figure over the rounds (events: their sum). */
export function medianOf(results: LoadResult[]): LoadResult {
  return {
    eventsPerSecond: median(results.map((r) => r.eventsPerSecond)),
    p50Ms: median(results.map((r) => r.p50Ms)),
    p99Ms: median(results.map((r) => r.p99Ms)),
    events: results.reduce((sum, r) => sum + r.events, 0),
  };
}

/** Each round's events/s, as a list for the report. */
export function perRound(results: LoadResult[]): string {
  return results.map((r) => Math.round(r.eventsPerSecond).toLocaleString("en-US")).join(", ");
}
