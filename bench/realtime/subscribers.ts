// The subscribing side of bench/realtime: N WebSocket clients, each subscribed to one instance
// over the /rt protocol, counting the `instance-update` frames they receive and each frame's delay
// from its `ts` (the commit time the server stamped) to its receipt here. The same code serves
// Backstate and the bare baseline, so both pay the same client cost per frame.
import { WebSocket, type RawData } from "ws";

/** Delays are counted in 1 ms buckets (`ts` has 1 ms resolution); the last bucket holds longer. */
const MAX_DELAY_MS = 60_000;

const FLIPS = Buffer.from('"flips":');
const TS = Buffer.from('"ts":');
const UPDATE = Buffer.from('"instance-update"');

export type Histogram = Uint32Array;

export const newHistogram = (): Histogram => new Uint32Array(MAX_DELAY_MS + 1);

/** The smallest delay (ms) at or below which a fraction `q` of the frames arrived. */
export function percentile(histogram: Histogram, q: number): number {
  let total = 0;
  for (const count of histogram) total += count;
  const rank = Math.ceil(q * total);
  let seen = 0;
  for (let ms = 0; ms < histogram.length; ms++) {
    seen += histogram[ms]!;
    if (seen >= rank && seen > 0) return ms;
  }
  return 0;
}

/** The non-negative integer right after `key` in `data`, searched from the end when `last`. */
function numberAfter(data: Buffer, key: Buffer, last: boolean): number {
  const at = last ? data.lastIndexOf(key) : data.indexOf(key);
  if (at < 0) return -1;
  let value = 0;
  let i = at + key.length;
  for (let c = data[i]; c !== undefined && c >= 0x30 && c <= 0x39; c = data[++i]) {
    value = value * 10 + (c - 0x30);
  }
  return i === at + key.length ? -1 : value;
}

const asBuffer = (data: RawData): Buffer =>
  Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);

export type Tally = {
  frames: number;
  bytes: number;
  /** Frames whose `ts` was later than their receipt (a `ts` pushed ahead of the clock). */
  early: number;
  delays: Histogram;
};

export class Subscribers {
  /** Σ over sockets of how far their instance's flip count advanced: one per delivered commit. */
  progress = 0;
  errors = 0;
  firstError: string | undefined;
  private readonly sockets: WebSocket[] = [];
  private lastFlips: Int32Array;
  private tally: Tally | undefined;
  private waiters: Array<{ target: number; resolve: () => void }> = [];
  private nextTarget = Infinity;

  private constructor(readonly size: number) {
    this.lastFlips = new Int32Array(size).fill(-1);
  }

  /**
   * Opens one socket per entry of `instances` to `${wsUrl}/rt?token=…` (`tokens[i % tokens.length]`)
   * and subscribes it to that instance; resolves once every socket has its first update.
   */
  static async open(
    wsUrl: string,
    tokens: string[],
    instances: string[],
    concurrency = 200,
  ): Promise<Subscribers> {
    const subscribers = new Subscribers(instances.length);
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < instances.length; i = next++) {
        await subscribers.connect(
          i,
          `${wsUrl}/rt?token=${tokens[i % tokens.length]}`,
          instances[i]!,
        );
      }
    };
    try {
      await Promise.all(Array.from({ length: concurrency }, worker));
    } catch (err) {
      await subscribers.close();
      throw err;
    }
    return subscribers;
  }

  private connect(index: number, url: string, instance: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, { perMessageDeflate: false });
      this.sockets.push(socket);
      const fail = (why: string) => reject(new Error(`socket ${index}: ${why}`));
      socket.once("unexpected-response", (_req, res) => fail(`HTTP ${res.statusCode}`));
      socket.once("error", (err) => fail(String(err)));
      socket.once("close", (code) => fail(`closed (${code}) before its first update`));
      socket.once("open", () =>
        socket.send(
          JSON.stringify({
            type: "subscribe-to-instance",
            requestId: "r1",
            machineName: "toggle",
            machineInstanceName: instance,
          }),
        ),
      );
      let subscribed = false;
      socket.on("message", (data) => {
        const isUpdate = this.onFrame(index, asBuffer(data));
        if (subscribed) return;
        if (!isUpdate) return fail(`refused: ${this.firstError}`);
        subscribed = true;
        socket.removeAllListeners("close");
        socket.removeAllListeners("error");
        socket.on("error", (err) => this.noteError(`socket ${index}: ${String(err)}`));
        resolve();
      });
    });
  }

  /** Counts one frame; answers whether it was a readable `instance-update`. */
  private onFrame(index: number, data: Buffer): boolean {
    const now = Date.now();
    const flips = data.indexOf(UPDATE) < 0 ? -1 : numberAfter(data, FLIPS, false);
    const ts = flips < 0 ? -1 : numberAfter(data, TS, true);
    if (ts < 0) {
      this.noteError(data.toString());
      return false;
    }
    const tally = this.tally;
    if (tally) {
      tally.frames++;
      tally.bytes += data.length;
      const delay = now - ts;
      if (delay < 0) tally.early++;
      tally.delays[Math.min(MAX_DELAY_MS, Math.max(0, delay))]!++;
    }
    const last = this.lastFlips[index]!;
    if (flips > last) {
      this.lastFlips[index] = flips;
      if (last >= 0) {
        this.progress += flips - last;
        if (this.progress >= this.nextTarget) this.wake();
      }
    }
    return true;
  }

  private noteError(text: string): void {
    this.errors++;
    this.firstError ??= text;
  }

  /** Resolves once `progress` reaches `target`. */
  whenProgress(target: number): Promise<void> {
    if (this.progress >= target) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiters.push({ target, resolve });
      this.nextTarget = Math.min(this.nextTarget, target);
    });
  }

  private wake(): void {
    const still: typeof this.waiters = [];
    for (const waiter of this.waiters) {
      if (this.progress >= waiter.target) waiter.resolve();
      else still.push(waiter);
    }
    this.waiters = still;
    this.nextTarget = Math.min(Infinity, ...still.map((w) => w.target));
  }

  /** Counts frames into `tally` from now on (`undefined` stops counting). */
  record(tally: Tally | undefined): void {
    this.tally = tally;
  }

  /** Drops every socket at once (no closing handshake) and waits until all are closed. */
  async close(): Promise<void> {
    await Promise.all(
      this.sockets.map(
        (socket) =>
          new Promise<void>((resolve) => {
            if (socket.readyState === socket.CLOSED) return resolve();
            socket.once("close", () => resolve());
            socket.terminate();
          }),
      ),
    );
  }
}
