// What the HTTP benchmarks share: the toggle sender, and measuring several sides in rotating
// rounds (each round starts with the next side, so drift on a shared machine hits all alike),
// each side then summed up by the median of its rounds.
import { runLoadFor, type LoadResult } from "../engine/load.js";
import { instanceName } from "../engine/toggle-machine.js";
import type { LoadClient } from "./lean-client.js";

export type Side = { name: string; send: () => Promise<unknown> };

const toggle = { event: "toggle" };

/**
 * A side's send: POST one toggle to a random one of `instances` instances (through each client
 * in turn), which must answer 200.
 */
export function toggleSender(
  clients: LoadClient[],
  headers: Record<string, string>,
  instances: number,
): () => Promise<unknown> {
  let next = 0;
  return async () => {
    const client = clients[next++ % clients.length]!;
    const path = `/machines/toggle/i/${instanceName(Math.floor(Math.random() * instances))}/events`;
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
): Promise<Map<string, LoadResult[]>> {
  const { rounds, seconds, warmupSeconds, concurrency } = options;
  for (const side of sides) await runLoadFor(warmupSeconds, concurrency, side.send);
  const results = new Map<string, LoadResult[]>(sides.map((side) => [side.name, []]));
  for (let round = 0; round < rounds; round++) {
    const order = sides.map((_, i) => sides[(i + round) % sides.length]!);
    for (const side of order) {
      results.get(side.name)!.push(await runLoadFor(seconds, concurrency, side.send));
    }
  }
  return results;
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
