// One realtime socket: its principal, its subscriptions, and a send path that a slow reader can
// never make grow without bound. Updates wait, latest-wins per instance, while the socket's
// buffer is above its high-water mark; the client keeps only the newest `ts` anyway. While
// anything waits, the socket is not read either: each request may be answered (an error per
// request id), and a client that sends without reading would otherwise grow those answers here.
import type WebSocket from "ws";
import type { Principal } from "../auth/principal.js";
import type { ErrorMessage } from "./protocol.js";

export type Subscription = {
  requestId: string;
  ref: string;
  machineName: string;
  instanceName: string;
};

export type ConnectionLimits = {
  /** Subscriptions one socket may hold. */
  maxSubscriptions: number;
  /** Bytes queued in the socket beyond which updates wait (and collapse) instead. */
  highWaterBytes: number;
};

const DRAIN_POLL_MS = 25;

export class Connection {
  readonly subscriptions = new Map<string, Subscription>();
  /**
   * Subscriptions being admitted (the checks read the store), by request id: the latest attempt
   * of each. An unsubscribe, a newer subscribe with the same id, or the socket's close replaces
   * or drops it, and the attempt then ends without subscribing.
   */
  readonly admitting = new Map<string, { machineName: string; instanceName: string }>();
  /** Subscribes whose checks and first read are still running, replaced ones included. */
  subscribesUnderWay = 0;
  /** The authContext as JSON: connections with equal ones share one allowRead decision. */
  readonly authKey: string;
  lastSeen = Date.now();
  /**
   * Per instance name, the newest state this socket was sent (or has waiting), the row it is of,
   * and its frame. A row made under the name after a delete has a larger id, and is newer
   * whatever its ts (another node's clock may be behind).
   */
  private readonly lastSent = new Map<string, { instanceId: number; ts: number; frame: string }>();
  private readonly waiting = new Map<string, string>();
  private drainTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly socket: WebSocket,
    readonly principal: Principal,
    readonly limits: ConnectionLimits,
  ) {
    this.authKey = JSON.stringify(principal.authContext);
  }

  /** The subscriptions naming one instance. */
  subscriptionsOf(ref: string): Subscription[] {
    return [...this.subscriptions.values()].filter((s) => s.ref === ref);
  }

  /** Whether a subscription of this socket names the instance. */
  watches(ref: string): boolean {
    for (const subscription of this.subscriptions.values())
      if (subscription.ref === ref) return true;
    return false;
  }

  /** Whether this socket was already sent row `instanceId`'s state at `ts`, or a newer one. */
  hasSeen(ref: string, instanceId: number, ts: number): boolean {
    const last = this.lastSent.get(ref);
    return last !== undefined && !isNewer({ instanceId, ts }, last);
  }

  /** The row of the instance whose state this socket was last sent, if any. */
  rowShown(ref: string): number | undefined {
    return this.lastSent.get(ref)?.instanceId;
  }

  /** Sends an update unless this socket already has a newer (or the same) state of the instance. */
  sendUpdate(ref: string, instanceId: number, ts: number, frame: string): void {
    if (this.hasSeen(ref, instanceId, ts)) return;
    this.lastSent.set(ref, { instanceId, ts, frame });
    this.enqueue(`update:${ref}`, frame);
  }

  /**
   * A new subscription's first state, sent even when this socket already has it: the client
   * hands each frame only to the listeners it holds at that moment, so a second subscriber to
   * an instance the socket watches has seen nothing yet (api-contract §6.4: the current state
   * at once). The socket's other subscribers get it once more, which the client takes as the
   * same state again. Never older than what the socket was sent last: that newer state goes.
   */
  sendCurrentState(ref: string, instanceId: number, ts: number, frame: string): void {
    const last = this.lastSent.get(ref);
    const read = { instanceId, ts, frame };
    const current = last !== undefined && isNewer(last, read) ? last : read;
    this.lastSent.set(ref, current);
    this.enqueue(`update:${ref}`, current.frame);
  }

  sendError(message: Omit<ErrorMessage, "type">): void {
    this.enqueue(`error:${message.requestId ?? ""}`, JSON.stringify({ type: "error", ...message }));
  }

  send(frame: string): void {
    this.enqueue(`frame:${frame}`, frame);
  }

  /** Forgets the instance's last state once nothing on this socket watches it. */
  forget(ref: string): void {
    if (!this.watches(ref)) {
      this.lastSent.delete(ref);
      this.waiting.delete(`update:${ref}`);
    }
  }

  close(code: number, reason: string): void {
    clearTimeout(this.drainTimer);
    this.waiting.clear();
    // Read again (see enqueue): the close handshake ends with the client's close frame.
    this.socket.resume();
    this.socket.close(code, reason);
  }

  private enqueue(slot: string, frame: string): void {
    if (this.socket.readyState !== this.socket.OPEN) return;
    if (this.waiting.size === 0 && this.socket.bufferedAmount <= this.limits.highWaterBytes) {
      this.socket.send(frame);
      return;
    }
    // Re-inserting moves the slot to the end, so waiting frames go out in the order last set.
    this.waiting.delete(slot);
    this.waiting.set(slot, frame);
    // Read no more requests until the answers go out: what waits stays one frame per instance
    // and per request already read, instead of growing with whatever the client keeps sending.
    if (!this.socket.isPaused) this.socket.pause();
    this.drainTimer ??= setTimeout(() => this.drain(), DRAIN_POLL_MS);
  }

  private drain(): void {
    this.drainTimer = undefined;
    if (this.socket.readyState !== this.socket.OPEN) return this.waiting.clear();
    for (const [slot, frame] of this.waiting) {
      if (this.socket.bufferedAmount > this.limits.highWaterBytes) break;
      this.waiting.delete(slot);
      this.socket.send(frame);
    }
    if (this.waiting.size > 0) this.drainTimer = setTimeout(() => this.drain(), DRAIN_POLL_MS);
    else this.socket.resume();
  }
}

/** Whether state `a` of an instance name is newer than `b`: a later row, or later in one row. */
export function isNewer(
  a: { instanceId: number; ts: number },
  b: { instanceId: number; ts: number },
): boolean {
  return a.instanceId !== b.instanceId ? a.instanceId > b.instanceId : a.ts > b.ts;
}
