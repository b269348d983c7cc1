// How much a running service may have waiting in its instance's mailbox. A service reports events
// as fast as it likes (an XState callback's sendBack in a loop), each one a step and a commit away
// from done; unbounded, the node kept every one in memory (an audit grew a node by 3 GB in 90 s).
// Past the bound, an event a service sends while it runs is dropped; an event that ends its run
// (done or error) always goes, or its instance would wait for it until the settle deadline.

export type BacklogLimits = { maxEvents: number; maxChars: number };

export const SERVICE_BACKLOG_LIMITS: BacklogLimits = { maxEvents: 64, maxChars: 16 * 1024 * 1024 };

type Waiting = { events: number; chars: number; dropping: boolean };

export class ServiceEventBacklog {
  private readonly waiting = new Map<string, Waiting>();

  constructor(private readonly limits: BacklogLimits = SERVICE_BACKLOG_LIMITS) {}

  /**
   * Whether an event of `chars` characters for the instance `ref` may wait for its turn; when it
   * may, release() must follow once it had it. `firstDrop` says whether this refusal is the first
   * since the instance's backlog last emptied (to log once per flood, not once per event).
   */
  admit(ref: string, chars: number, final: boolean): { admitted: boolean; firstDrop: boolean } {
    const now = this.waiting.get(ref) ?? { events: 0, chars: 0, dropping: false };
    const full = now.events + 1 > this.limits.maxEvents || now.chars + chars > this.limits.maxChars;
    if (full && !final) {
      const firstDrop = !now.dropping;
      // Kept only while something waits: its release() is what forgets the instance again.
      if (now.events > 0) this.waiting.set(ref, { ...now, dropping: true });
      return { admitted: false, firstDrop };
    }
    this.waiting.set(ref, { ...now, events: now.events + 1, chars: now.chars + chars });
    return { admitted: true, firstDrop: false };
  }

  release(ref: string, chars: number): void {
    const now = this.waiting.get(ref);
    if (!now) return;
    if (now.events <= 1) this.waiting.delete(ref);
    else this.waiting.set(ref, { ...now, events: now.events - 1, chars: now.chars - chars });
  }
}
