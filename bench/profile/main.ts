// bench/profile: one side of the toggle workload under load, and where its CPU goes. Not a
// benchmark with a goal (bench/http and bench/postgres are): a tool for finding what to make
// faster. It runs one server (or two) in child processes, drives it like bench/postgres (1,000
// instances, concurrency 64), and prints events/s and latency with the CPU per event of each
// process group: the server process, its children (the sandboxes), PostgreSQL, and this load
// generator, and their sum with the rate it would allow if every core were busy; then how much of
// the time the server's main thread ran and how much it waited for a core, the whole machine's
// busy and idle shares, and PostgreSQL transactions per event.
//
// Run: npm run bench:profile -- [postgres|postgres2|postgres2-by-instance|sqlite|baseline] [seconds]
// (default postgres, 10 s). postgres2 is two nodes on one database, the load split between them by
// turns (postgres2-by-instance: each instance's events to one of them); the server figures are
// then the sum of both.
// BENCH_CONCURRENCY changes the concurrency; BENCH_PG_URL the database (as bench/postgres).
// BENCH_COSTS=promises (or heap) also counts, in each server process, the promises its main thread
// creates (or the bytes it allocates on the heap) per event (event-costs.ts): counts that stay put
// on a noisy machine, where a flat profile's times do not. Counting promises slows the server:
// that run's rate and CPU are its own.
// For a CPU profile of the server, run the built file under node's profiler: children inherit it,
//   node --cpu-prof --cpu-prof-dir=/tmp/prof bench/dist/profile/main.js sqlite
// (one .cpuprofile for this process, one for the server; open them in Chrome's DevTools).
// Linux only: CPU figures come from /proc.
import { randomBytes } from "node:crypto";
import pg from "pg";
import { describeLoad, runLoadFor } from "../engine/load.js";
import { instanceName } from "../engine/toggle-machine.js";
import { startChild, type Child } from "../http/child.js";
import { HttpClient } from "../http/client.js";
import { LeanHttpClient } from "../http/lean-client.js";
import { toggleSender, type Routing } from "../http/rounds.js";
import { costKindAsked, countingCosts, readCount } from "./costs-reader.js";
import type { BackstateInfo } from "../http/backstate-node.js";
import { descendantsSeconds, ownSeconds } from "../realtime/cpu.js";
import { createInstances, deployToggle } from "../realtime/setup.js";
import {
  machineTimes,
  postgresCpuCounter,
  threadSchedSeconds,
  timesBetween,
  type MachineTimes,
} from "./machine-cpu.js";

const INSTANCES = 1_000;
const WARMUP_SECONDS = 2;
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);
const DATABASE_URL =
  process.env.BENCH_PG_URL ??
  process.env.BACKSTATE_TEST_PG_URL ??
  "postgres://postgres@127.0.0.1:5432/test";

const SIDES = {
  postgres: {
    title: "Backstate, PostgreSQL, 1 node",
    script: "../postgres/backstate-server.js",
    nodes: 1,
  },
  // Both nodes on one schema, the load split between them by turns or by instance (as
  // bench/postgres's two sides of 2 nodes).
  postgres2: {
    title: "Backstate, PostgreSQL, 2 nodes",
    script: "../postgres/backstate-server.js",
    nodes: 2,
  },
  "postgres2-by-instance": {
    title: "Backstate, PostgreSQL, 2 nodes by instance",
    script: "../postgres/backstate-server.js",
    nodes: 2,
    routing: "by-instance",
  },
  sqlite: { title: "Backstate, SQLite (default)", script: "../http/backstate-server.js", nodes: 1 },
  baseline: { title: "baseline, PostgreSQL", script: "../postgres/baseline-server.js", nodes: 1 },
} as const;
type SideName = keyof typeof SIDES;

const [sideArg = "postgres", secondsArg = "10"] = process.argv.slice(2);
const costKind = costKindAsked();
if (!(sideArg in SIDES)) {
  throw new Error(`usage: bench/profile [${Object.keys(SIDES).join("|")}] [seconds]`);
}
const sideName = sideArg as SideName;
const side = SIDES[sideName];
const seconds = Number(secondsArg);
if (!(seconds > 0)) throw new Error(`seconds must be a positive number, not ${secondsArg}`);

/** CPU seconds used so far, by process group. */
type Sample = {
  server: number;
  children: number;
  postgres: number;
  self: number;
  machine: MachineTimes;
  serverThread: { running: number; waiting: number };
};

/** PostgreSQL's CPU, counted so that a connection closing meanwhile takes nothing away. */
const postgresCpuSeconds = postgresCpuCounter();

/** Server figures are summed over the servers (two nodes: both processes). */
function sample(servers: readonly number[]): Sample {
  const self = process.cpuUsage();
  const sum = (of: (pid: number) => number) => servers.reduce((total, pid) => total + of(pid), 0);
  const threads = servers.map((pid) => threadSchedSeconds(pid));
  return {
    server: sum(ownSeconds),
    children: sum(descendantsSeconds),
    postgres: postgresCpuSeconds(),
    self: (self.user + self.system) / 1e6,
    machine: machineTimes(),
    serverThread: {
      running: threads.reduce((total, thread) => total + thread.running, 0),
      waiting: threads.reduce((total, thread) => total + thread.waiting, 0),
    },
  };
}

async function committedTransactions(client: pg.Client): Promise<number> {
  const result = await client.query<{ n: string }>(
    "SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()",
  );
  return Number(result.rows[0]?.n);
}

const schema = `bench_profile_${randomBytes(4).toString("hex")}`;
Object.assign(process.env, { BENCH_PG_URL: DATABASE_URL, BENCH_PG_SCHEMA: schema });
const usesPostgres = sideName !== "sqlite";
const database = new pg.Client({ connectionString: DATABASE_URL });
if (usesPostgres) await database.connect();

const children: Array<Child<BackstateInfo | { url: string }>> = [];
let client: HttpClient | undefined;
const loads: LeanHttpClient[] = [];
try {
  // A second node starts once the first has set the database up (and its admin).
  for (let n = 0; n < side.nodes; n++) {
    const start = () => startChild<BackstateInfo | { url: string }>(side.script);
    children.push(await (costKind === undefined ? start() : countingCosts(start)));
  }
  const child = children[0]!;
  const pids = children.map((node) => node.pid);
  client = new HttpClient(child.info.url, CONCURRENCY);
  let headers: Record<string, string> = {};
  if (sideName !== "baseline") {
    const [token] = await deployToggle(child.info as BackstateInfo, client, 1);
    const names = Array.from({ length: INSTANCES }, (_, i) => instanceName(i));
    await createInstances(client, token!, names, CONCURRENCY);
    headers = { authorization: `Bearer ${token}` };
  }
  for (const node of children) loads.push(new LeanHttpClient(node.info.url, CONCURRENCY));
  const routing: Routing = "routing" in side ? side.routing : "rotate";
  const send = toggleSender(loads, headers, INSTANCES, routing);
  await runLoadFor(WARMUP_SECONDS, CONCURRENCY, send);

  const transactionsBefore = usesPostgres ? await committedTransactions(database) : NaN;
  const countBefore = costKind === undefined ? undefined : await readCount(pids);
  const before = sample(pids);
  const result = await runLoadFor(seconds, CONCURRENCY, send);
  const after = sample(pids);
  const countAfter = costKind === undefined ? undefined : await readCount(pids);
  const transactionsAfter = usesPostgres ? await committedTransactions(database) : NaN;

  const events = result.events;
  const perEvent = (cpuSeconds: number) => {
    const us = (cpuSeconds / events) * 1e6;
    const share = (cpuSeconds / seconds) * 100;
    return Number.isNaN(us)
      ? "?"
      : `${us.toFixed(1).padStart(6)} µs  (${share.toFixed(0)}% of a core)`;
  };
  const machine = timesBetween(before.machine, after.machine);
  const total = machine.user + machine.system + machine.idle + machine.iowait + machine.other;
  const cores = total / seconds;
  const share = (part: number) => `${((part / total) * cores * 100).toFixed(0)}%`;
  console.log(
    `bench/profile: ${side.title}, toggle over ${INSTANCES.toLocaleString("en-US")} instances, concurrency ${CONCURRENCY}, ${seconds} s`,
  );
  console.log(`  ${describeLoad(result)}`);
  console.log("  CPU per event:");
  const servers = side.nodes === 1 ? "the server process  " : "the server processes";
  console.log(`    ${servers}    ${perEvent(after.server - before.server)}`);
  const sandboxes = side.nodes === 1 ? "its child processes  " : "their child processes";
  console.log(`    ${sandboxes}   ${perEvent(after.children - before.children)}`);
  if (usesPostgres) {
    console.log(`    PostgreSQL              ${perEvent(after.postgres - before.postgres)}`);
  }
  console.log(`    this load generator     ${perEvent(after.self - before.self)}`);
  const allCpu =
    after.server -
    before.server +
    (after.children - before.children) +
    (after.self - before.self) +
    (usesPostgres ? after.postgres - before.postgres : 0);
  console.log(
    `    all of them             ${perEvent(allCpu)}: with every core busy, at most ` +
      `${Math.round((cores * events) / allCpu).toLocaleString("en-US")} events/s`,
  );
  const thread = (kind: "running" | "waiting") =>
    `${(((after.serverThread[kind] - before.serverThread[kind]) / seconds) * 100).toFixed(0)}%`;
  // Two nodes' threads are summed: 100% is one core's worth between them.
  const mainThreads =
    side.nodes === 1 ? "the server's main thread" : "the servers' main threads together";
  console.log(
    `  ${mainThreads}: on a core ${thread("running")} of the time, ` +
      `waiting for one ${thread("waiting")} (runnable while other processes had both)`,
  );
  console.log(
    `  the machine (${cores.toFixed(1)} cores): busy ${share(total - machine.idle - machine.iowait)} ` +
      `(user ${share(machine.user)}, system ${share(machine.system)}, interrupts and steal ${share(machine.other)}), ` +
      `idle ${share(machine.idle)}, waiting for I/O ${share(machine.iowait)}`,
  );
  if (usesPostgres) {
    const perEventTransactions = (transactionsAfter - transactionsBefore) / events;
    console.log(`  PostgreSQL transactions per event: ${perEventTransactions.toFixed(3)}`);
  }
  if (countBefore !== undefined && countAfter !== undefined) {
    const perEventCount = (countAfter - countBefore) / events;
    const of = side.nodes === 1 ? "the server's main thread" : "the servers' main threads";
    console.log(
      costKind === "promises"
        ? `  promises ${of} created per event: ${perEventCount.toFixed(1)} (the counting slowed this run)`
        : `  heap ${of} allocated per event: ${(perEventCount / 1024).toFixed(1)} KB`,
    );
  }
} finally {
  client?.close();
  for (const load of loads) load.close();
  await Promise.all(children.map((node) => node.close()));
  if (usesPostgres) {
    await database.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await database.end();
  }
}
