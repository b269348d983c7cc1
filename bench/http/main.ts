// bench/http: send-event events/s and p50/p99 latency over HTTP on loopback, for the toggle
// machine over 1,000 instances at concurrency 64: Backstate's real server next to a hand-written
// node:http + XState + better-sqlite3 server (baseline-server.ts), in alternating rounds.
// Each server runs in a child process of its own; this process is only the load generator, and
// its ceiling is measured first against an endpoint that answers at once.
// Run: npm run bench:http (BENCH_ROUNDS and BENCH_SECONDS change the rounds and their length)
import { instanceName } from "../engine/toggle-machine.js";
import { createInstances, deployToggle } from "../realtime/setup.js";
import { describeLoad, runLoadFor, type LoadResult } from "../engine/load.js";
import type { BackstateInfo } from "./backstate-server.js";
import { startChild, type Child } from "./child.js";
import { HttpClient } from "./client.js";

const INSTANCES = 1_000;
const CONCURRENCY = 64;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const WARMUP_SECONDS = 2;
const GOAL = 1.5;
const toggle = { event: "toggle" };

type Side = { name: string; send: () => Promise<unknown> };

const randomInstance = () => instanceName(Math.floor(Math.random() * INSTANCES));

/** A side's send: POST one toggle to a random instance, which must answer 200. */
function sender(client: HttpClient, headers: Record<string, string>): () => Promise<unknown> {
  return async () => {
    const path = `/machines/toggle/i/${randomInstance()}/events`;
    const reply = await client.call("POST", path, toggle, headers);
    if (reply.status !== 200) throw new Error(`POST ${path}: ${reply.status} ${reply.body}`);
  };
}

/** Deploys the toggle machine over Backstate's API and creates the instances; answers a user token. */
async function setUpBackstate(info: BackstateInfo, client: HttpClient): Promise<string> {
  const [token] = await deployToggle(info, client, 1);
  const names = Array.from({ length: INSTANCES }, (_, i) => instanceName(i));
  await createInstances(client, token!, names, CONCURRENCY);
  return token!;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

/** The median of each figure over the rounds. */
function medianOf(results: LoadResult[]): LoadResult {
  return {
    eventsPerSecond: median(results.map((r) => r.eventsPerSecond)),
    p50Ms: median(results.map((r) => r.p50Ms)),
    p99Ms: median(results.map((r) => r.p99Ms)),
    events: results.reduce((sum, r) => sum + r.events, 0),
  };
}

const children: Array<Child<unknown>> = [];
const clients: HttpClient[] = [];
try {
  const [backstate, baseline] = await Promise.all([
    startChild<BackstateInfo>("./backstate-server.js"),
    startChild<{ url: string }>("./baseline-server.js"),
  ]);
  children.push(backstate, baseline);
  const backstateClient = new HttpClient(backstate.info.url, CONCURRENCY);
  const baselineClient = new HttpClient(baseline.info.url, CONCURRENCY);
  clients.push(backstateClient, baselineClient);

  const token = await setUpBackstate(backstate.info, backstateClient);
  const sides: Side[] = [
    { name: "Backstate", send: sender(backstateClient, { authorization: `Bearer ${token}` }) },
    { name: "baseline", send: sender(baselineClient, {}) },
  ];

  // The load generator's ceiling: the same requests to an endpoint that does no work.
  await runLoadFor(WARMUP_SECONDS, CONCURRENCY, () =>
    baselineClient.call("POST", "/empty", toggle),
  );
  const ceiling = await runLoadFor(SECONDS, CONCURRENCY, () =>
    baselineClient.call("POST", "/empty", toggle),
  );

  for (const side of sides) await runLoadFor(WARMUP_SECONDS, CONCURRENCY, side.send);
  const rounds = new Map<string, LoadResult[]>(sides.map((side) => [side.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate which side goes first, so drift on a shared machine hits both alike.
    for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
      rounds.get(side.name)!.push(await runLoadFor(SECONDS, CONCURRENCY, side.send));
    }
  }

  const ours = medianOf(rounds.get("Backstate")!);
  const theirs = medianOf(rounds.get("baseline")!);
  const ratio = ours.eventsPerSecond / theirs.eventsPerSecond;
  const verdict = (ok: boolean) => (ok ? "meets" : "MISSES");
  const perRound = (name: string) =>
    rounds
      .get(name)!
      .map((r) => Math.round(r.eventsPerSecond).toLocaleString("en-US"))
      .join(", ");
  console.log(
    `bench/http (toggle machine, ${INSTANCES.toLocaleString("en-US")} instances, concurrency ${CONCURRENCY}, HTTP on loopback, median of ${ROUNDS} alternating rounds of ${SECONDS} s each)`,
  );
  console.log(`load generator ceiling (POST /empty): ${describeLoad(ceiling)}`);
  console.log(`send event  Backstate: ${describeLoad(ours)}`);
  console.log(`            baseline:  ${describeLoad(theirs)}`);
  console.log(
    `  ratio ${ratio.toFixed(2)}x (goal >= ${GOAL}x: ${verdict(ratio >= GOAL)}); p99 ${verdict(ours.p99Ms <= theirs.p99Ms)} the goal of no worse`,
  );
  console.log(`  rounds (events/s)  Backstate: ${perRound("Backstate")}`);
  console.log(`                     baseline:  ${perRound("baseline")}`);
} finally {
  for (const client of clients) client.close();
  await Promise.all(children.map((child) => child.close()));
}
