// The calls waiting for a sandbox process, in the order the pool offers them one: the order they
// came in, except that the calls a retiring process handed back unrun (see sandbox-retirement.ts)
// come back ahead of the later calls of their org, so the calls of one affinity keep their order.

export class WaitingCalls<Call extends { readonly orgId: string }> {
  #waiting: Call[] = [];
  /** Calls a retiring process handed back, in the order they were assigned (see #takeBack). */
  #handedBack: Call[] = [];

  /** Whether no call waits, nor was handed back. */
  get empty(): boolean {
    return this.#waiting.length === 0 && this.#handedBack.length === 0;
  }

  /** The calls waiting, in order, as of the last serve: those handed back since join at the next. */
  get calls(): readonly Call[] {
    return this.#waiting;
  }

  /** Queues a call that came in, behind every call waiting. */
  add(call: Call): void {
    this.#waiting.push(call);
  }

  /** Queues a call its process handed back unrun; it takes its place at the next serve. */
  handBack(call: Call): void {
    this.#handedBack.push(call);
  }

  /**
   * Offers each waiting call in order, those handed back in their place, to `assign`: the calls it
   * takes (answers true for) leave the queue, the others keep their place.
   */
  serve(assign: (call: Call) => boolean): void {
    this.#takeBack();
    for (let i = 0; i < this.#waiting.length;) {
      const call = this.#waiting[i];
      if (call !== undefined && assign(call)) this.#waiting.splice(i, 1);
      else i++;
    }
  }

  /** Empties the queue: answers every call waiting, then every call handed back. */
  takeAll(): Call[] {
    return [...this.#waiting.splice(0), ...this.#handedBack.splice(0)];
  }

  /**
   * Queues the calls handed back: ahead of the later calls of their org, which keeps the calls of
   * one affinity in order, but behind the calls of other orgs already waiting, for which their
   * process gave up its slot. One pass over the queue, for all the calls handed back since the
   * last.
   */
  #takeBack(): void {
    if (this.#handedBack.length === 0) return;
    const back = new Map<string, Call[]>();
    for (const call of this.#handedBack) {
      const ofOrg = back.get(call.orgId);
      if (ofOrg === undefined) back.set(call.orgId, [call]);
      else ofOrg.push(call);
    }
    this.#handedBack = [];
    const waiting: Call[] = [];
    for (const call of this.#waiting) {
      const ofOrg = back.get(call.orgId);
      if (ofOrg !== undefined) {
        back.delete(call.orgId);
        for (const earlier of ofOrg) waiting.push(earlier);
      }
      waiting.push(call);
    }
    for (const ofOrg of back.values()) for (const earlier of ofOrg) waiting.push(earlier);
    this.#waiting = waiting;
  }
}
