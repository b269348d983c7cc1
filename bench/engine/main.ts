// bench/engine: events/s and latency for a toggle machine over 1,000 instances at concurrency 64,
// and for one hot instance, next to the hand-written baseline (baseline.ts) in the same run; then
// the server's resident memory with 1,000 and with 100,000 stored instances.
// Run: npm run bench:engine
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { Backstate } from "@backstate/server";
import { openBaseline } from "./baseline.js";
import { describeLoad, runLoad, type LoadResult } from "./load.js";
import {
  createInstance,
  createInstances,
  instanceName as name,
  openToggleNode,
  sendToggle,
} from "./toggle-node.js";

const INSTANCES = 1_000;
const EVENTS = 20_000;
const HOT_EVENTS = 5_000;
const CONCURRENCY = 64;
const ROUNDS = 2;
const toggle = { type: "toggle" };
const randomInstance = () => name(Math.floor(Math.random() * INSTANCES));

async function baselineRound(dir: string): Promise<{ spread: LoadResult; hot: LoadResult }> {
  const baseline = openBaseline(join(dir, `baseline-${Date.now()}.db`));
  for (let i = 0; i < INSTANCES; i++) baseline.create(name(i));
  baseline.create("hot");
  // Async like a server handler, so both sides pay for the same promise plumbing.
  const send = (instance: string) => Promise.resolve().then(() => baseline.send(instance, toggle));
  await runLoad(2_000, CONCURRENCY, () => send(randomInstance()));
  const spread = await runLoad(EVENTS, CONCURRENCY, () => send(randomInstance()));
  const hot = await runLoad(HOT_EVENTS, CONCURRENCY, () => send("hot"));
  baseline.close();
  return { spread, hot };
}

async function backstateRound(node: Backstate): Promise<{ spread: LoadResult; hot: LoadResult }> {
  await runLoad(2_000, CONCURRENCY, () => sendToggle(node, randomInstance()));
  const spread = await runLoad(EVENTS, CONCURRENCY, () => sendToggle(node, randomInstance()));
  const hot = await runLoad(HOT_EVENTS, CONCURRENCY, () => sendToggle(node, "hot"));
  return { spread, hot };
}

function best(results: LoadResult[]): LoadResult {
  return results.reduce((a, b) => (b.eventsPerSecond > a.eventsPerSecond ? b : a));
}

const dir = mkdtempSync(join(tmpdir(), "backstate-bench-"));
try {
  const node = await openToggleNode(join(dir, "backstate"));
  await createInstances(node, 0, INSTANCES);
  await createInstance(node, "hot");

  const ours: Array<{ spread: LoadResult; hot: LoadResult }> = [];
  const theirs: Array<{ spread: LoadResult; hot: LoadResult }> = [];
  for (let round = 0; round < ROUNDS; round++) {
    theirs.push(await baselineRound(dir));
    ours.push(await backstateRound(node));
  }
  const spread = {
    ours: best(ours.map((r) => r.spread)),
    theirs: best(theirs.map((r) => r.spread)),
  };
  const hot = { ours: best(ours.map((r) => r.hot)), theirs: best(theirs.map((r) => r.hot)) };

  await node.close();
  const memory = JSON.parse(
    execFileSync(
      process.execPath,
      ["--expose-gc", fileURLToPath(new URL("./memory.js", import.meta.url))],
      {
        encoding: "utf8",
      },
    ).trim(),
  ) as { small: { rssMb: number; heapMb: number }; large: { rssMb: number; heapMb: number } };
  const memoryAt1k = memory.small.rssMb;
  const memoryAt100k = memory.large.rssMb;

  const spreadRatio = spread.ours.eventsPerSecond / spread.theirs.eventsPerSecond;
  const hotRatio = hot.ours.eventsPerSecond / hot.theirs.eventsPerSecond;
  const memoryRatio = memoryAt100k / memoryAt1k;
  const verdict = (ok: boolean) => (ok ? "meets" : "MISSES");
  console.log(
    `bench/engine (toggle machine, concurrency ${CONCURRENCY}, best of ${ROUNDS} rounds each)`,
  );
  console.log(`1,000 instances  Backstate: ${describeLoad(spread.ours)}`);
  console.log(`                 baseline:  ${describeLoad(spread.theirs)}`);
  console.log(
    `  ratio ${spreadRatio.toFixed(2)}x (goal >= 2x: ${verdict(spreadRatio >= 2)}); p99 ${verdict(spread.ours.p99Ms <= spread.theirs.p99Ms)} the goal of no worse`,
  );
  console.log(`hot instance     Backstate: ${describeLoad(hot.ours)}`);
  console.log(`                 baseline:  ${describeLoad(hot.theirs)}`);
  console.log(`  ratio ${hotRatio.toFixed(2)}x (goal >= 1x: ${verdict(hotRatio >= 1)})`);
  console.log(
    `resident memory (server process, JS heap ${memory.small.heapMb.toFixed(0)} → ${memory.large.heapMb.toFixed(0)} MB)  ${memoryAt1k.toFixed(0)} MB with 1,000 stored instances, ${memoryAt100k.toFixed(0)} MB with 100,000: ${memoryRatio.toFixed(2)}x (goal <= 1.2x: ${verdict(memoryRatio <= 1.2)})`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
