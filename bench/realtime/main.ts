// bench/realtime: realtime fan-out over /rt, for the toggle machine, in one run:
//   (a) 5,000 subscribers on one instance, and
//   (b) one subscriber on each of 5,000 instances.
// Backstate's real server next to a bare `ws` server (baseline-server.ts) that sends the same
// frames to the same number of connections. Both are driven the same way: HTTP
// POST /machines/toggle/i/<name>/events from this process, each one update for every socket
// subscribed to that instance. Figures: `instance-update` frames received per second across all
// sockets, and each frame's delay from commit to delivery (p50, p99), with the CPU each server
// (Backstate with its sandboxes) and this process used.
//
// Delay = the receipt time here (Date.now()) minus the frame's `ts`: Backstate stamps `ts` on the
// transition as it commits it (before the durable write, so the delay covers the write, allowRead
// and the fan-out), the bare server when it handles the event. Same machine, same clock; 1 ms
// resolution. Not the sender's HTTP reply: Backstate pushes at commit, before the POST (which
// waits for the instance to settle) answers, and concurrent senders' replies do not map to frames.
//
// Load: closed loop (driver.ts). Senders post only while the subscribers are at most a window of
// frames behind, two events' fan-outs in (a), 128 frames in (b), so the rate is what reaches the
// subscribers and the delay includes at most that much queueing, on both sides alike.
//
// Processes: each server runs in a child process of its own; this process holds the subscriber
// sockets (both sides' for the scenario at hand: 2 x 5,000 file descriptors) and sends the events.
// On 2 cores, this process and the server each want one, so the figures are rough; when this
// process is the bound (its CPU near 100%), compare the servers' CPU per update instead.
// Rounds alternate sides, so drift hits both alike.
//
// Run: npm run bench:realtime (BENCH_SUBSCRIBERS, BENCH_ROUNDS, BENCH_SECONDS change the size,
// the rounds and their length; BENCH_USERS=n spreads the sockets over n distinct user tokens,
// which makes Backstate ask allowRead once per user per update).
import { readFileSync } from "node:fs";
import { startChild, type Child } from "../http/child.js";
import { HttpClient } from "../http/client.js";
import type { BackstateInfo } from "./backstate-server.js";
import { driveFor, type RoundResult } from "./driver.js";
import { createInstances, deployToggle } from "./setup.js";
import { newHistogram, percentile, Subscribers } from "./subscribers.js";

const SUBSCRIBERS = Number(process.env.BENCH_SUBSCRIBERS ?? 5_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const USERS = Number(process.env.BENCH_USERS ?? 1);
const WARMUP_SECONDS = 1;
const GOAL = 0.5;
const HOT = "hot";

type Side = {
  name: string;
  wsUrl: string;
  tokens: string[];
  pid: number;
  send: (instance: string) => Promise<void>;
};

type Scenario = {
  title: string;
  /** The instance each socket subscribes to. */
  subscriptions: string[];
  instanceOf: (seq: number) => string;
  fanout: number;
  concurrency: number;
  windowFrames: number;
  /** Also measure Backstate's events/s with no socket open: its event path's own ceiling. */
  eventPathAlone?: boolean;
};

/** Open files this process may hold (Linux); Infinity when unknown. */
function openFileLimit(): number {
  try {
    const line = readFileSync("/proc/self/limits", "utf8")
      .split("\n")
      .find((l) => l.startsWith("Max open files"));
    const soft = line?.split(/\s{2,}/)[1];
    return soft === undefined || soft === "unlimited" ? Infinity : Number(soft);
  } catch {
    return Infinity;
  }
}

function sender(client: HttpClient, headers: Record<string, string>) {
  return async (instance: string) => {
    const path = `/machines/toggle/i/${instance}/events`;
    const reply = await client.call("POST", path, { event: "toggle" }, headers);
    if (reply.status !== 200) throw new Error(`POST ${path}: ${reply.status} ${reply.body}`);
  };
}

const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
const int = (n: number) => Math.round(n).toLocaleString("en-US");
const pct = (n: number) => (Number.isNaN(n) ? "?" : `${Math.round(n * 100)}%`);

type Summary = ReturnType<typeof summarize>;

const COLUMNS =
  "                 updates/s  events/s  delay p50  delay p99  frame  server CPU  (per update)  clients CPU";

function row(name: string, s: Summary): string {
  return [
    `  ${name.padEnd(13)}`,
    int(s.framesPerSecond).padStart(11),
    int(s.eventsPerSecond).padStart(9),
    `${s.p50} ms`.padStart(10),
    `${s.p99} ms`.padStart(10),
    `${Math.round(s.frameBytes)} B`.padStart(6),
    pct(s.serverCpu).padStart(11),
    `${s.serverUsPerUpdate.toFixed(1)} µs`.padStart(13),
    pct(s.clientCpu).padStart(12),
  ].join(" ");
}

/** One side's figures over its rounds: medians of the rates, percentiles over every frame. */
function summarize(rounds: RoundResult[]) {
  const delays = newHistogram();
  for (const round of rounds) round.delays.forEach((count, ms) => (delays[ms]! += count));
  const frames = rounds.reduce((sum, r) => sum + r.frames, 0);
  return {
    framesPerSecond: median(rounds.map((r) => r.frames / r.seconds)),
    eventsPerSecond: median(rounds.map((r) => r.events / r.seconds)),
    p50: percentile(delays, 0.5),
    p99: percentile(delays, 0.99),
    frameBytes: frames ? rounds.reduce((sum, r) => sum + r.bytes, 0) / frames : 0,
    early: rounds.reduce((sum, r) => sum + r.early, 0),
    undelivered: rounds.reduce((sum, r) => sum + r.undelivered, 0),
    serverCpu: median(rounds.map((r) => r.serverCpu)),
    serverUsPerUpdate: median(rounds.map((r) => (r.serverCpu * r.seconds * 1e6) / r.frames)),
    clientCpu: median(rounds.map((r) => r.clientCpu)),
    perRound: rounds.map((r) => int(r.frames / r.seconds)).join(", "),
  };
}

async function runScenario(scenario: Scenario, sides: Side[]): Promise<string[]> {
  const subscribers = new Map<Side, Subscribers>();
  const lines = [scenario.title];
  let ourUpdatesPerSecond: number | undefined;
  try {
    for (const side of sides) {
      const started = Date.now();
      subscribers.set(
        side,
        await Subscribers.open(side.wsUrl, side.tokens, scenario.subscriptions),
      );
      console.error(
        `  ${side.name}: ${int(scenario.subscriptions.length)} sockets subscribed in ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
    }
    const drive = (side: Side, seconds: number) =>
      driveFor({
        subscribers: subscribers.get(side)!,
        send: side.send,
        instanceOf: scenario.instanceOf,
        fanout: scenario.fanout,
        concurrency: scenario.concurrency,
        windowFrames: scenario.windowFrames,
        seconds,
        serverPid: side.pid,
      });
    for (const side of sides) await drive(side, WARMUP_SECONDS);
    const rounds = new Map<Side, RoundResult[]>(sides.map((side) => [side, []]));
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate which side goes first, so drift on a shared machine hits both alike.
      for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
        rounds.get(side)!.push(await drive(side, SECONDS));
      }
    }

    const [ours, theirs] = sides.map((side) => summarize(rounds.get(side)!)) as [Summary, Summary];
    ourUpdatesPerSecond = ours.framesPerSecond;
    lines.push(row(sides[0]!.name, ours), row(sides[1]!.name, theirs));
    const ratio = ours.framesPerSecond / theirs.framesPerSecond;
    lines.push(
      `  ratio ${ratio.toFixed(2)}x (goal >= ${GOAL}x: ${ratio >= GOAL ? "meets" : "MISSES"}); ` +
        `server CPU per update ${(ours.serverUsPerUpdate / theirs.serverUsPerUpdate).toFixed(2)}x the bare broadcast's`,
      `  rounds (updates/s): ${sides[0]!.name} ${ours.perRound}; ${sides[1]!.name} ${theirs.perRound}`,
    );
    if (Math.max(ours.clientCpu, theirs.clientCpu) >= 0.9) {
      lines.push(
        "  note: the subscribers' process used a whole core, so it bounds the rates it measures; " +
          "the server CPU per update compares the servers alone",
      );
    }
    for (const [side, summary] of [
      [sides[0]!, ours],
      [sides[1]!, theirs],
    ] as const) {
      const sub = subscribers.get(side)!;
      if (summary.undelivered || summary.early || sub.errors) {
        lines.push(
          `  ${side.name}: ${int(summary.undelivered)} updates never arrived, ${int(summary.early)} stamped ahead of the clock, ` +
            `${int(sub.errors)} other frames${sub.firstError ? ` (first: ${sub.firstError.slice(0, 200)})` : ""}`,
        );
      }
    }
  } finally {
    await Promise.all([...subscribers.values()].map((s) => s.close()));
  }
  if (scenario.eventPathAlone) {
    const backstate = sides[0]!;
    const alone = await driveFor({
      subscribers: await Subscribers.open(backstate.wsUrl, backstate.tokens, []),
      send: backstate.send,
      instanceOf: scenario.instanceOf,
      fanout: 0,
      concurrency: scenario.concurrency,
      windowFrames: scenario.windowFrames,
      seconds: SECONDS,
      serverPid: backstate.pid,
    });
    const aloneRate = alone.events / alone.seconds;
    lines.push(
      `  ${backstate.name} with no socket open, same events: ${int(aloneRate)} events/s ` +
        `(server CPU ${pct(alone.serverCpu)}): its event path's own ceiling here; with the ` +
        `subscribers, ${pct((ourUpdatesPerSecond ?? NaN) / aloneRate)} of it (the rest is the fan-out's cost)`,
    );
  }
  return lines;
}

const needed = 2 * SUBSCRIBERS + 500;
if (openFileLimit() < needed) {
  throw new Error(
    `bench/realtime holds ${int(2 * SUBSCRIBERS)} client sockets at once: raise the open file limit ` +
      `(ulimit -n, now ${openFileLimit()}) to ${needed} or lower BENCH_SUBSCRIBERS`,
  );
}
process.env.BENCH_SUBSCRIBERS = String(SUBSCRIBERS);

const children: Array<Child<unknown>> = [];
const clients: HttpClient[] = [];
try {
  const [backstate, baseline] = await Promise.all([
    startChild<BackstateInfo>("../realtime/backstate-server.js"),
    startChild<{ url: string; pid: number }>("../realtime/baseline-server.js"),
  ]);
  children.push(backstate, baseline);
  const backstateClient = new HttpClient(backstate.info.url, 64);
  const baselineClient = new HttpClient(baseline.info.url, 64);
  clients.push(backstateClient, baselineClient);

  console.error("bench/realtime: setting up");
  const tokens = await deployToggle(backstate.info, backstateClient, USERS);
  const names = Array.from({ length: SUBSCRIBERS }, (_, i) => `i${i}`);
  await createInstances(backstateClient, tokens[0]!, [HOT, ...names], 32);

  const sides: Side[] = [
    {
      name: "Backstate",
      wsUrl: backstate.info.url.replace(/^http/, "ws"),
      tokens,
      pid: backstate.info.pid,
      send: sender(backstateClient, { authorization: `Bearer ${tokens[0]}` }),
    },
    {
      name: "bare ws",
      wsUrl: baseline.info.url.replace(/^http/, "ws"),
      tokens: ["none"],
      pid: baseline.info.pid,
      send: sender(baselineClient, {}),
    },
  ];
  const scenarios: Scenario[] = [
    {
      title: `(a) ${int(SUBSCRIBERS)} subscribers on one instance`,
      subscriptions: names.map(() => HOT),
      instanceOf: () => HOT,
      fanout: SUBSCRIBERS,
      // Two events' frames outstanding at most: the next commit overlaps the last fan-out, and a
      // frame waits behind at most one earlier update's fan-out.
      concurrency: 2,
      windowFrames: 2 * SUBSCRIBERS,
    },
    {
      title: `(b) one subscriber on each of ${int(SUBSCRIBERS)} instances`,
      subscriptions: names,
      instanceOf: (seq) => names[seq % SUBSCRIBERS]!,
      fanout: 1,
      concurrency: 32,
      windowFrames: 128,
      eventPathAlone: true,
    },
  ];

  const lines: string[] = [];
  for (const scenario of scenarios) {
    console.error(`bench/realtime: ${scenario.title}`);
    lines.push(...(await runScenario(scenario, sides)));
  }
  console.log(
    `bench/realtime (toggle machine; events over HTTP, updates over WebSocket, all on loopback; ` +
      `median of ${ROUNDS} alternating rounds of ${SECONDS} s; ${USERS === 1 ? "one user token on every socket" : `${int(USERS)} user tokens`})`,
  );
  console.log(
    "delay = receipt time here - the update's ts (the commit's time stamp), 1 ms resolution; " +
      "CPU = share of one core (the server's includes its sandboxes)",
  );
  console.log(COLUMNS);
  for (const line of lines) console.log(line);
} finally {
  for (const client of clients) client.close();
  await Promise.all(children.map((child) => child.close()));
}
