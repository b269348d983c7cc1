// bench/http's baseline, what a user would write by hand: a node:http server over XState v5 and
// better-sqlite3 (WAL, synchronous=FULL), one table of snapshots. Per request: parse the JSON
// body, load the row, compute the transition, save the row, answer the state as JSON. It also
// serves POST /empty, which answers at once, to measure the load generator's own ceiling.
// Run by main.ts in a child process.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openBaseline } from "../engine/baseline.js";
import { instanceName } from "../engine/toggle-machine.js";
import { serveToggleBaseline } from "./baseline-http.js";

const INSTANCES = Number(process.env.BENCH_INSTANCES ?? 1_000);

const dir = mkdtempSync(join(tmpdir(), "backstate-bench-http-baseline-"));
const baseline = openBaseline(join(dir, "baseline.db"), { history: false });
for (let i = 0; i < INSTANCES; i++) baseline.create(instanceName(i));

await serveToggleBaseline(
  (instance, event) => baseline.send(instance, event),
  () => {
    baseline.close();
    rmSync(dir, { recursive: true, force: true });
  },
);
