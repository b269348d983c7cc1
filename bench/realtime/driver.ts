// Drives one side for a fixed time. `concurrency` HTTP senders post toggles; before each post a
// sender waits until the subscribers are at most `windowFrames` frames behind the events already
// posted, so neither side can run ahead of its deliveries and pile frames up in socket buffers:
// the rate measured is the rate at which updates reach the subscribers, not the rate events are
// accepted. After the time is up the senders stop and the frames still owed are waited for.
import { treeCpuSeconds } from "./cpu.js";
import { newHistogram, type Subscribers, type Tally } from "./subscribers.js";

export type DriveOptions = {
  subscribers: Subscribers;
  /** Posts one toggle to the instance; rejects unless the server accepted it. */
  send: (instance: string) => Promise<void>;
  /** The instance of the seq-th event. */
  instanceOf: (seq: number) => string;
  /** Frames each event owes: the subscribers of the instance it goes to. */
  fanout: number;
  concurrency: number;
  windowFrames: number;
  seconds: number;
  /** The server's pid, for its CPU use (with its sandbox processes). */
  serverPid: number;
};

export type RoundResult = Tally & {
  seconds: number;
  /** Events the server accepted (HTTP 200) within the round. */
  events: number;
  /** Frames still owed when the wait for them gave up (0 when everything arrived). */
  undelivered: number;
  /** Share of one core the server (and its sandboxes) and this client process used. */
  serverCpu: number;
  clientCpu: number;
};

const DRAIN_TIMEOUT_MS = 20_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

export async function driveFor(options: DriveOptions): Promise<RoundResult> {
  const { subscribers, fanout, windowFrames } = options;
  const tally: Tally = { frames: 0, bytes: 0, early: 0, delays: newHistogram() };
  let expected = subscribers.progress;
  let seq = 0;
  let events = 0;
  let stopped = false;

  const serverCpu0 = treeCpuSeconds(options.serverPid);
  const clientCpu0 = process.cpuUsage();
  const start = process.hrtime.bigint();
  let seconds = 0;
  let serverCpu = 0;
  let clientCpu = 0;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    subscribers.record(undefined);
    seconds = Number(process.hrtime.bigint() - start) / 1e9;
    serverCpu = (treeCpuSeconds(options.serverPid) - serverCpu0) / seconds;
    const clientUsage = process.cpuUsage(clientCpu0);
    clientCpu = (clientUsage.user + clientUsage.system) / 1e6 / seconds;
  };
  subscribers.record(tally);
  const timer = setTimeout(stop, options.seconds * 1000);

  const worker = async () => {
    while (!stopped) {
      while (!stopped && subscribers.progress < expected + fanout - windowFrames) {
        await subscribers.whenProgress(expected + fanout - windowFrames);
      }
      if (stopped) return;
      expected += fanout;
      await options.send(options.instanceOf(seq++));
      if (!stopped) events++;
    }
  };
  const workers = Promise.all(Array.from({ length: options.concurrency }, worker));
  // A sender waiting for frames that never come would wait forever: give up on it in time.
  await Promise.race([workers, sleep(options.seconds * 1000 + DRAIN_TIMEOUT_MS)]);
  clearTimeout(timer);
  stop();

  await Promise.race([subscribers.whenProgress(expected), sleep(DRAIN_TIMEOUT_MS)]);
  return {
    ...tally,
    seconds,
    events,
    undelivered: Math.max(0, expected - subscribers.progress),
    serverCpu,
    clientCpu,
  };
}
