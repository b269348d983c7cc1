// Shared benchmark timing: two workloads measured in alternating rounds, so drift in a shared,
// noisy machine hits both alike, and each reported as its median rate.

export type Rate = { opsPerSecond: number; rounds: number[] };
type Workload = () => Promise<void> | void;

async function timeOnce(batch: Workload, ops: number): Promise<number> {
  const start = process.hrtime.bigint();
  await batch();
  return ops / (Number(process.hrtime.bigint() - start) / 1e9);
}

function median(rates: number[]): Rate {
  const sorted = [...rates].sort((a, b) => a - b);
  return { opsPerSecond: sorted[Math.floor(sorted.length / 2)] ?? 0, rounds: rates };
}

/** Runs each batch (of `opsPerBatch` operations) once to warm up, then `rounds` times, alternating. */
export async function compare(
  ours: Workload,
  baseline: Workload,
  opsPerBatch: number,
  rounds = 9,
): Promise<{ ours: Rate; baseline: Rate }> {
  await ours();
  await baseline();
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < rounds; i++) {
    a.push(await timeOnce(ours, opsPerBatch));
    b.push(await timeOnce(baseline, opsPerBatch));
  }
  return { ours: median(a), baseline: median(b) };
}

export function formatRate(rate: Rate): string {
  return `${Math.round(rate.opsPerSecond).toLocaleString("en-US")} ops/s`;
}

/** One line per comparison: both rates, the ratio and whether it meets the goal. */
export function report(
  name: string,
  result: { ours: Rate; baseline: Rate },
  baselineName: string,
  goal: number,
): boolean {
  const ratio = result.ours.opsPerSecond / result.baseline.opsPerSecond;
  console.log(
    `${name}: ${formatRate(result.ours)} vs ${baselineName} ${formatRate(result.baseline)} = ` +
      `${ratio.toFixed(2)}x (goal >= ${goal}x: ${ratio >= goal ? "meets" : "MISSES"})`,
  );
  return ratio >= goal;
}
