// bench/postgres: send-event events/s and p50/p99 latency over HTTP on loopback, for the toggle
// machine over 1,000 instances at concurrency 64, in one run, on five sides:
//   - Backstate on PostgreSQL, one node;
//   - Backstate on PostgreSQL, two nodes on one schema, the load split between them by turns (a
//     round-robin load balancer), and the same two nodes with each instance's events sent to one
//     of them (a balancer that hashes the instance's path). The second often runs right after
//     the first, whose writes left each node with about half its instances to read again: that
//     costs it a few hundred reads a round, so its figure errs low;
//   - Backstate on its SQLite default (bench/http's server);
//   - a hand-written baseline on PostgreSQL (baseline-server.ts: node:http + XState v5's pure
//     transition + pg, load-transition-save per request in one transaction).
// Every server runs in child processes of its own, each pair of nodes or single server on a
// fresh schema (dropped at the end); this process is only the load generator, whose ceiling is
// measured first. Rounds alternate the sides' order, so drift on a shared machine hits them
// alike; figures are medians.
// It also reads how much CPU the 1-node side and the baseline spent per event: each server's main
// thread (both are single Node processes: on a machine with cores to spare, that, not this
// machine's sharing, sets the ratio between them), each server with its child processes (the
// sandboxes), and PostgreSQL (every postgres process of the machine, so a database busy with
// others errs high). How either would scale with more cores follows from those.
// On a small machine every process (the nodes, their sandboxes, PostgreSQL, this load generator)
// shares the same cores, so two nodes there measure the cost of splitting one machine's load in
// two (each node's batches get smaller, and its per-event overhead larger), not how a cluster of
// machines scales.
// Run: npm run bench:postgres. BENCH_PG_URL (default BACKSTATE_TEST_PG_URL, else
// postgres://postgres@127.0.0.1:5432/test), BENCH_ROUNDS, BENCH_SECONDS, BENCH_BASELINE_POOL
// (the baseline's pool size, default 16) and BENCH_PG_POOL (each Backstate node's, default 10).
import { randomBytes } from "node:crypto";
import { cpus } from "node:os";
import pg from "pg";
import { describeLoad, runLoadFor, type LoadResult } from "../engine/load.js";
import { instanceName } from "../engine/toggle-machine.js";
import { startChild, type Child } from "../http/child.js";
import { HttpClient } from "../http/client.js";
import { LeanHttpClient, type LoadClient } from "../http/lean-client.js";
import {
  cpuMicrosPerEvent,
  medianOf,
  perRound,
  runRounds,
  toggleSender,
  type RoundResult,
  type Side,
} from "../http/rounds.js";
import { postgresCpuCounter, threadSchedSeconds } from "../profile/machine-cpu.js";
import { treeCpuSeconds } from "../realtime/cpu.js";
import type { BackstateInfo } from "../http/backstate-node.js";
import { createInstances, deployToggle } from "../realtime/setup.js";

const INSTANCES = 1_000;
const CONCURRENCY = 64;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const WARMUP_SECONDS = 2;
const GOAL = 2;
const DATABASE_URL =
  process.env.BENCH_PG_URL ??
  process.env.BACKSTATE_TEST_PG_URL ??
  "postgres://postgres@127.0.0.1:5432/test";
const toggle = { event: "toggle" };

/** The CPU a PostgreSQL side is measured by (cpuMicrosPerEvent reads them by these names). */
const METERS = {
  mainThread: "main thread",
  server: "server and its sandboxes",
  postgres: "PostgreSQL",
} as const;

/** PostgreSQL's CPU, counted so that a pool closing its idle connections takes nothing away. */
const postgresCpuSeconds = postgresCpuCounter();

/**
 * The meters of a server process: its main thread (the one that, on a machine with cores to
 * spare, bounds its rate), the process with its children, and PostgreSQL. NaN without /proc.
 */
function cpuMetersOf(pid: number): Record<string, () => number> {
  return {
    [METERS.mainThread]: () => threadSchedSeconds(pid).running,
    [METERS.server]: () => treeCpuSeconds(pid),
    [METERS.postgres]: () => postgresCpuSeconds(),
  };
}

/** Starts a child with `env` added to this process's environment (fork copies it then). */
function startWith<T>(script: string, env: Record<string, string>): Promise<Child<T>> {
  Object.assign(process.env, env);
  try {
    return startChild<T>(script);
  } finally {
    for (const name of Object.keys(env)) delete process.env[name];
  }
}

async function dropSchemas(names: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: DATABASE_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${names.join(", ")} CASCADE`);
  } finally {
    await client.end();
  }
}

const run = randomBytes(4).toString("hex");
const schemas = {
  one: `bench_pg_${run}_one`,
  two: `bench_pg_${run}_two`,
  base: `bench_pg_${run}_base`,
};
const children: Array<Child<unknown>> = [];
const clients: LoadClient[] = [];
const pgEnv = (schema: string) => ({ BENCH_PG_URL: DATABASE_URL, BENCH_PG_SCHEMA: schema });
try {
  const starts = [
    startWith<BackstateInfo>("../postgres/backstate-server.js", pgEnv(schemas.one)),
    startWith<BackstateInfo>("../postgres/backstate-server.js", pgEnv(schemas.two)),
    startChild<BackstateInfo>("./backstate-server.js"),
    startWith<{ url: string }>("../postgres/baseline-server.js", pgEnv(schemas.base)),
  ] as const;
  // Each child is kept for the cleanup below once it has started, even when another failed to
  // (it would otherwise outlive this process's failure).
  for (const start of starts)
    start.then(
      (child) => children.push(child),
      () => {},
    );
  await Promise.allSettled(starts);
  const started = await Promise.all(starts);
  // The pair's second node starts once the first has set the database up (and its admin).
  const twoB = await startWith<BackstateInfo>(
    "../postgres/backstate-server.js",
    pgEnv(schemas.two),
  );
  children.push(twoB);
  const [one, twoA, sqlite, baseline] = started;
  const closedAtEnd = <C extends LoadClient>(client: C): C => {
    clients.push(client);
    return client;
  };
  // The setup goes through node:http, the load itself through lean clients (lean-client.ts).
  const clientOf = (child: Child<{ url: string }>) =>
    closedAtEnd(new HttpClient(child.info.url, CONCURRENCY));
  const loadOf = (child: Child<{ url: string }>) =>
    closedAtEnd(new LeanHttpClient(child.info.url, CONCURRENCY));
  const oneClient = clientOf(one);
  const twoClients = [clientOf(twoA), clientOf(twoB)];
  const sqliteClient = clientOf(sqlite);
  const baselineLoad = loadOf(baseline);

  // Deployed and populated through the API; the second node of the pair shares its database.
  const names = Array.from({ length: INSTANCES }, (_, i) => instanceName(i));
  const setUp = async (info: BackstateInfo, client: HttpClient) => {
    const [token] = await deployToggle(info, client, 1);
    await createInstances(client, token!, names, CONCURRENCY);
    return { authorization: `Bearer ${token}` };
  };
  const twoHeaders = await setUp(twoA.info, twoClients[0]!);
  const twoLoads = [loadOf(twoA), loadOf(twoB)];
  const pgOneSide: Side = {
    name: "Backstate, PostgreSQL, 1 node",
    send: toggleSender([loadOf(one)], await setUp(one.info, oneClient), INSTANCES),
    cpuMeters: cpuMetersOf(one.pid),
  };
  const baselineSide: Side = {
    name: "baseline, PostgreSQL",
    send: toggleSender([baselineLoad], {}, INSTANCES),
    cpuMeters: cpuMetersOf(baseline.pid),
  };
  const sides: Side[] = [
    pgOneSide,
    {
      name: "Backstate, PostgreSQL, 2 nodes",
      send: toggleSender(twoLoads, twoHeaders, INSTANCES),
    },
    {
      name: "Backstate, PostgreSQL, 2 nodes by instance",
      send: toggleSender(twoLoads, twoHeaders, INSTANCES, "by-instance"),
    },
    {
      name: "Backstate, SQLite (default)",
      send: toggleSender([loadOf(sqlite)], await setUp(sqlite.info, sqliteClient), INSTANCES),
    },
    baselineSide,
  ];

  // The load generator's ceiling: the same requests to an endpoint that does no work.
  const empty = () => baselineLoad.call("POST", "/empty", toggle);
  await runLoadFor(WARMUP_SECONDS, CONCURRENCY, empty);
  const ceiling = await runLoadFor(SECONDS, CONCURRENCY, empty);

  const rounds = await runRounds(sides, {
    rounds: ROUNDS,
    seconds: SECONDS,
    warmupSeconds: WARMUP_SECONDS,
    concurrency: CONCURRENCY,
  });

  const result = (name: string) => medianOf(rounds.get(name)!);
  const [pgOne, pgTwo, pgTwoByInstance, sqliteDefault, hand] = sides.map((side) =>
    result(side.name),
  ) as [LoadResult, LoadResult, LoadResult, LoadResult, LoadResult];
  const ratio = pgOne.eventsPerSecond / hand.eventsPerSecond;
  const width = Math.max(...sides.map((side) => side.name.length));
  console.log(
    `bench/postgres (toggle machine, ${INSTANCES.toLocaleString("en-US")} instances, concurrency ${CONCURRENCY}, HTTP on loopback, ${cpus().length} cores shared by every process, median of ${ROUNDS} rotating rounds of ${SECONDS} s each)`,
  );
  console.log(`load generator ceiling (POST /empty): ${describeLoad(ceiling)}`);
  for (const side of sides) {
    console.log(
      `${side.name.padEnd(width)}  ${describeLoad(result(side.name))}  (rounds: ${perRound(rounds.get(side.name)!)})`,
    );
  }
  console.log(
    `1 node on PostgreSQL vs the PostgreSQL baseline: ${ratio.toFixed(2)}x (goal >= ${GOAL}x: ${ratio >= GOAL ? "meets" : "MISSES"})`,
  );
  reportCpu(rounds.get(pgOneSide.name)!, rounds.get(baselineSide.name)!);
  console.log(
    `2 nodes vs 1 node: ${(pgTwo.eventsPerSecond / pgOne.eventsPerSecond).toFixed(2)}x by turns, ` +
      `${(pgTwoByInstance.eventsPerSecond / pgOne.eventsPerSecond).toFixed(2)}x by instance; ` +
      `1 node on PostgreSQL vs SQLite: ${(pgOne.eventsPerSecond / sqliteDefault.eventsPerSecond).toFixed(2)}x`,
  );
} finally {
  for (const client of clients) client.close();
  await Promise.all(children.map((child) => child.close()));
  await dropSchemas(Object.values(schemas)).catch((error: unknown) =>
    console.error(`could not drop the benchmark's schemas: ${String(error)}`),
  );
}

/**
 * CPU per event of the 1-node side and the baseline, and the ratios they give on a machine where
 * one part, then another, has cores to spare: a core for each main thread; enough cores for each
 * server's whole process tree; a database server of its own; and, as here, every process on the
 * same cores (the sum).
 */
function reportCpu(one: RoundResult[], hand: RoundResult[]): void {
  const figures = Object.values(METERS).map((meter) => ({
    meter,
    one: cpuMicrosPerEvent(one, meter),
    hand: cpuMicrosPerEvent(hand, meter),
  }));
  if (figures.some((figure) => figure.one === undefined || figure.hand === undefined)) return;
  console.log("CPU per event (median of the rounds): 1 node / baseline, and their ratio");
  for (const { meter, one, hand } of figures) {
    console.log(
      `  ${meter.padEnd(26)} ${Math.round(one!)} µs / ${Math.round(hand!)} µs: ${(hand! / one!).toFixed(2)}x`,
    );
  }
  const sum = (side: "one" | "hand") =>
    figures.filter((f) => f.meter !== METERS.mainThread).reduce((total, f) => total + f[side]!, 0);
  console.log(
    `  ${"all of them".padEnd(26)} ${Math.round(sum("one"))} µs / ${Math.round(sum("hand"))} µs: ${(sum("hand") / sum("one")).toFixed(2)}x`,
  );
}
