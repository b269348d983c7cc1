// bench/http: send-event events/s and p50/p99 latency over HTTP on loopback, for the toggle
// machine over 1,000 instances at concurrency 64: Backstate's real server next to a hand-written
// node:http + XState + better-sqlite3 server (baseline-server.ts), in alternating rounds.
// Each server runs in a child process of its own; this process is only the load generator, and
// its ceiling is measured first against an endpoint that answers at once.
// Run: npm run bench:http (BENCH_ROUNDS and BENCH_SECONDS change the rounds and their length)
import { instanceName } from "../engine/toggle-machine.js";
import { createInstances, deployToggle } from "../realtime/setup.js";
import { describeLoad, runLoadFor } from "../engine/load.js";
import type { BackstateInfo } from "./backstate-server.js";
import { startChild, type Child } from "./child.js";
import { HttpClient } from "./client.js";
import { medianOf, perRound, runRounds, toggleSender, type Side } from "./rounds.js";

const INSTANCES = 1_000;
const CONCURRENCY = 64;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const WARMUP_SECONDS = 2;
const GOAL = 1.5;
const toggle = { event: "toggle" };

/** Deploys the toggle machine over Backstate's API and creates the instances; answers a user token. */
async function setUpBackstate(info: BackstateInfo, client: HttpClient): Promise<string> {
  const [token] = await deployToggle(info, client, 1);
  const names = Array.from({ length: INSTANCES }, (_, i) => instanceName(i));
  await createInstances(client, token!, names, CONCURRENCY);
  return token!;
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
    {
      name: "Backstate",
      send: toggleSender([backstateClient], { authorization: `Bearer ${token}` }, INSTANCES),
    },
    { name: "baseline", send: toggleSender([baselineClient], {}, INSTANCES) },
  ];

  // The load generator's ceiling: the same requests to an endpoint that does no work.
  await runLoadFor(WARMUP_SECONDS, CONCURRENCY, () =>
    baselineClient.call("POST", "/empty", toggle),
  );
  const ceiling = await runLoadFor(SECONDS, CONCURRENCY, () =>
    baselineClient.call("POST", "/empty", toggle),
  );

  const rounds = await runRounds(sides, {
    rounds: ROUNDS,
    seconds: SECONDS,
    warmupSeconds: WARMUP_SECONDS,
    concurrency: CONCURRENCY,
  });

  const ours = medianOf(rounds.get("Backstate")!);
  const theirs = medianOf(rounds.get("baseline")!);
  const ratio = ours.eventsPerSecond / theirs.eventsPerSecond;
  const verdict = (ok: boolean) => (ok ? "meets" : "MISSES");
  console.log(
    `bench/http (toggle machine, ${INSTANCES.toLocaleString("en-US")} instances, concurrency ${CONCURRENCY}, HTTP on loopback, median of ${ROUNDS} alternating rounds of ${SECONDS} s each)`,
  );
  console.log(`load generator ceiling (POST /empty): ${describeLoad(ceiling)}`);
  console.log(`send event  Backstate: ${describeLoad(ours)}`);
  console.log(`            baseline:  ${describeLoad(theirs)}`);
  console.log(
    `  ratio ${ratio.toFixed(2)}x (goal >= ${GOAL}x: ${verdict(ratio >= GOAL)}); p99 ${verdict(ours.p99Ms <= theirs.p99Ms)} the goal of no worse`,
  );
  console.log(`  rounds (events/s)  Backstate: ${perRound(rounds.get("Backstate")!)}`);
  console.log(`                     baseline:  ${perRound(rounds.get("baseline")!)}`);
} finally {
  for (const client of clients) client.close();
  await Promise.all(children.map((child) => child.close()));
}
