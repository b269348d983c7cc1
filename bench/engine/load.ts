// Drives a workload at a fixed concurrency and reports events/s and latency percentiles.

export type LoadResult = { eventsPerSecond: number; p50Ms: number; p99Ms: number; events: number };

/** Runs `total` calls of `send(i)` with `concurrency` in flight at once. */
export async function runLoad(
  total: number,
  concurrency: number,
  send: (i: number) => Promise<unknown>,
): Promise<LoadResult> {
  const latencies = new Float64Array(total);
  let next = 0;
  const start = process.hrtime.bigint();
  const worker = async () => {
    for (let i = next++; i < total; i = next++) {
      const t0 = process.hrtime.bigint();
      await send(i);
      latencies[i] = Number(process.hrtime.bigint() - t0) / 1e6;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const sorted = Array.from(latencies).sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return { eventsPerSecond: total / seconds, p50Ms: at(0.5), p99Ms: at(0.99), events: total };
}

export function describeLoad(result: LoadResult): string {
  return `${Math.round(result.eventsPerSecond).toLocaleString("en-US")} events/s, p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms`;
}
