// The memory half of bench/engine, in its own process so the throughput runs leave nothing
// behind: resident memory after a steady load over 1,000 stored instances, then after the same
// load over 100,000. Prints one JSON line. Run by main.ts.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Backstate } from "@backstate/server";
import { runLoad } from "./load.js";
import { createInstances, instanceName, openToggleNode, sendToggle } from "./toggle-node.js";

const CONCURRENCY = 64;
const LOAD = 20_000;

/** The same steady load at both sizes: events to random stored instances. */
async function steadyLoad(node: Backstate, stored: number): Promise<void> {
  await runLoad(LOAD, CONCURRENCY, () =>
    sendToggle(node, instanceName(Math.floor(Math.random() * stored))),
  );
}

function sample() {
  (globalThis as { gc?: () => void }).gc?.();
  const { rss, heapUsed } = process.memoryUsage();
  return { rssMb: rss / 2 ** 20, heapMb: heapUsed / 2 ** 20 };
}

const dir = mkdtempSync(join(tmpdir(), "backstate-bench-memory-"));
try {
  const node = await openToggleNode(dir);
  await createInstances(node, 0, 1_000);
  await steadyLoad(node, 1_000);
  await steadyLoad(node, 1_000);
  const small = sample();
  await createInstances(node, 1_000, 100_000);
  await steadyLoad(node, 100_000);
  await steadyLoad(node, 100_000);
  const large = sample();
  await node.close();
  console.log(JSON.stringify({ small, large }));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
