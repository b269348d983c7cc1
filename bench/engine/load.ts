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
  return summarize(latencies, Number(process.hrtime.bigint() - start) / 1e9);
}

/** Like runLoad, but for a fixed time: workers start no new call after `seconds`. */
export async function runLoadFor(
  seconds: number,
  concurrency: number,
  send: (i: number) => Promise<unknown>,
): Promise<LoadResult> {
  const latencies: number[] = [];
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(seconds * 1e9));
  const worker = async () => {
    for (let t0 = process.hrtime.bigint(); t0 < end; t0 = process.hrtime.bigint()) {
      await send(latencies.length);
      latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return summarize(latencies, Number(process.hrtime.bigint() - start) / 1e9);
}

function summarize(latencies: ArrayLike<number>, seconds: number): LoadResult {
  const sorted = Array.from(latencies).sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return {
    eventsPerSecond: sorted.length / seconds,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    events: sorted.length,
  };
}

export function describeLoad(result: LoadResult): string {
  return `${Math.round(result.eventsPerSecond).toLocaleString("en-US")} events/s, p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms`;
}
