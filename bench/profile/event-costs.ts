// Loaded into a server process by bench/profile (NODE_OPTIONS=--import=…) when it is run with
// BENCH_COSTS: counts what the process's main thread makes per event that a CPU profile shows
// only spread thin over everything (a flat profile): the promises it creates (BENCH_COSTS=promises)
// or the bytes it allocates on the JavaScript heap (BENCH_COSTS=heap). One at a time: the promise
// hook adds its own allocations (about 110 bytes a promise). Both are counts, not times, so they
// stay the same on a noisy machine and tell whether a change made the event path leaner. On
// SIGUSR2 it writes the totals so far, as JSON, to the file BENCH_COSTS_FILE names, with the
// process id appended.
import { createHook } from "node:async_hooks";
import { writeFileSync } from "node:fs";
import v8 from "node:v8";
import { costKindOf, costsFile, type EventCosts } from "./costs-file.js";

type GcRecord = {
  beforeGC: { heapStatistics: { usedHeapSize: number } };
  afterGC: { heapStatistics: { usedHeapSize: number } };
};

const base = process.env.BENCH_COSTS_FILE;
const kind = costKindOf(process.env.BENCH_COSTS);
if (base !== undefined && kind !== undefined) {
  const count = kind === "promises" ? countPromises() : countAllocatedBytes();
  let written = 0;
  process.on("SIGUSR2", () => {
    written++;
    const costs: EventCosts = { count: count(), written };
    writeFileSync(costsFile(base, process.pid), JSON.stringify(costs));
  });
}

/** Starts counting promises created; answers the count so far. */
function countPromises(): () => number {
  let promises = 0;
  // A promise hook slows promise-heavy code: the counted run's rate is not the plain run's.
  createHook({
    init(_id, type) {
      if (type === "PROMISE") promises++;
    },
  }).enable();
  return () => promises;
}

/** Starts counting bytes allocated on the heap; answers the count so far. */
function countAllocatedBytes(): () => number {
  // Every allocation raises the used heap until a collection lowers it: the rises between
  // collections, summed, are what was allocated (within a page or so per collection).
  let allocatedBytes = 0;
  let lastUsed = v8.getHeapStatistics().used_heap_size;
  const profiler = new v8.GCProfiler();
  profiler.start();
  return () => {
    const profile = profiler.stop() as { statistics: GcRecord[] };
    profiler.start();
    for (const gc of profile.statistics) {
      allocatedBytes += Math.max(0, gc.beforeGC.heapStatistics.usedHeapSize - lastUsed);
      lastUsed = gc.afterGC.heapStatistics.usedHeapSize;
    }
    const used = v8.getHeapStatistics().used_heap_size;
    allocatedBytes += Math.max(0, used - lastUsed);
    lastUsed = used;
    return allocatedBytes;
  };
}
