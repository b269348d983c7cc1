// How a sandbox process gives up its slot to another org, when every slot is taken: which process
// goes, and when. The pool kills the process this picks and starts one for the waiting org.
//
// A process holding steps that wait for their commit (holdStep) is not killed for another org:
// their effects would be lost although their transitions are committed. When no idle process free
// of held steps can go, the cheapest one retires instead: it takes nothing new but the calls that
// settle its steps, and goes once idle with them settled (or overdue).
//
// A retiring process also hands back the calls it has not started, once it has served its org for
// a turn (orgTurnMs): they wait for a process of their org again, and the org waiting for the slot
// gets it after the call under way, not after the other org's whole backlog. With one org busy,
// nothing retires and nothing of this runs.
import type { SandboxLogger } from "./sandbox-logger.js";
import type { SandboxProcess } from "./sandbox-process.js";

/** Calls that settle a step held in its process: the only ones a retiring process takes. */
const SETTLING_OPS = new Set(["execute", "discard", "stop-services"]);

/** Whether a call of `op` settles a held step, and so must run where the step is. */
export function settlesHeldStep(op: string): boolean {
  return SETTLING_OPS.has(op);
}

export type SandboxRetirementOptions = {
  /** The pool's live processes (the pool's own set, read as it changes). */
  processes: ReadonlySet<SandboxProcess>;
  /** How long a process serves its org, at least, before it hands back its unstarted calls. */
  orgTurnMs: number;
  /** How long a retiring process may keep its held steps before it goes regardless. */
  retireWithinMs: number;
  logger: SandboxLogger;
  /** Asks the pool to serve its waiting calls again: a slot may be free for them now. */
  serveWaiting: () => void;
};

export class SandboxRetirement {
  readonly #processes: ReadonlySet<SandboxProcess>;
  readonly #orgTurnMs: number;
  readonly #retireWithinMs: number;
  readonly #logger: SandboxLogger;
  readonly #serveWaiting: () => void;
  /** Per process, the steps waiting there for their commit (see hold). */
  readonly #heldSteps = new Map<SandboxProcess, number>();
  /** Processes that go once their held steps are settled, with when they began to retire. */
  readonly #retiring = new Map<SandboxProcess, number>();
  #lookAgain: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: SandboxRetirementOptions) {
    this.#processes = options.processes;
    this.#orgTurnMs = options.orgTurnMs;
    this.#retireWithinMs = options.retireWithinMs;
    this.#logger = options.logger;
    this.#serveWaiting = options.serveWaiting;
  }

  /**
   * Counts a step held in the process until the answered release (idempotent): while any is, the
   * process is not recycled for another org, and retiring, it waits for them to be settled.
   */
  hold(sandbox: SandboxProcess): () => void {
    this.#heldSteps.set(sandbox, (this.#heldSteps.get(sandbox) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#heldSteps.get(sandbox) ?? 1) - 1;
      if (left > 0) this.#heldSteps.set(sandbox, left);
      else this.#heldSteps.delete(sandbox);
      // A retiring process may be free to go now, and a waiter to take its slot.
      this.#serveWaiting();
    };
  }

  isRetiring(sandbox: SandboxProcess): boolean {
    return this.#retiring.has(sandbox);
  }

  /**
   * Whether the process takes a call of `op`. A retiring process settles what it holds and starts
   * nothing new: any other call waits for it to go, and then takes a fresh process.
   */
  takes(sandbox: SandboxProcess, op: string): boolean {
    return !this.#retiring.has(sandbox) || settlesHeldStep(op);
  }

  /**
   * Every slot is taken by other orgs than `orgId`: answers a process to recycle for it, one that
   * has retired (idle, its held steps settled or overdue), or else an idle one holding no steps,
   * preferring the one whose loss costs least (fewest pinned affinities, then least recently
   * used). Failing both, undefined: the call waits and the cheapest process begins to retire: it
   * takes no new work but the calls that settle its steps, so it goes idle even while its org
   * keeps sending (a retirement no waiter needs any more ends: endNeedless).
   */
  processToRecycle(orgId: string): SandboxProcess | undefined {
    const now = Date.now();
    let victim: SandboxProcess | undefined;
    for (const [sandbox, since] of this.#retiring) {
      if (sandbox.orgId === orgId || sandbox.load > 0 || !sandbox.alive) continue;
      const held = this.#heldSteps.get(sandbox) ?? 0;
      if (held === 0) victim = sandbox;
      else if (now - since < this.#retireWithinMs)
        this.#lookAgainIn(this.#retireWithinMs - (now - since));
      else {
        this.#logger.warn("a retiring sandbox process still held steps: their effects are lost", {
          orgId: sandbox.orgId,
          pid: sandbox.pid,
          steps: held,
        });
        victim = sandbox;
      }
      if (victim !== undefined) break;
    }
    victim ??= this.#cheapest((sandbox) => sandbox.load === 0 && !this.#heldSteps.has(sandbox));
    if (victim !== undefined) {
      this.#retiring.delete(victim);
      return victim;
    }
    if (this.#retiring.size === 0) {
      const retiree = this.#cheapest(() => true);
      if (retiree !== undefined) {
        this.#retiring.set(retiree, now);
        this.#recallAfterTurn(retiree);
        // Nothing may settle before it is overdue: look again then.
        this.#lookAgainIn(this.#retireWithinMs);
      }
    }
    return undefined;
  }

  /**
   * A process retires for waiters of other orgs: once none waits (another slot served them), it
   * serves again, and the calls parked for it go on (else they would wait for nothing, forever).
   */
  endNeedless(waiting: readonly { orgId: string }[]): void {
    let ended = false;
    for (const sandbox of [...this.#retiring.keys()]) {
      if (waiting.some((waiter) => waiter.orgId !== sandbox.orgId)) continue;
      this.#retiring.delete(sandbox);
      ended = true;
    }
    if (ended) this.#serveWaiting();
  }

  /** Forgets a process that died: its held steps are lost with it, and it retires no more. */
  forget(sandbox: SandboxProcess): void {
    this.#heldSteps.delete(sandbox);
    this.#retiring.delete(sandbox);
  }

  /** The pool is closing: no more looking again, and no process hands back its calls. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#lookAgain);
  }

  /**
   * Once the retiring process has served its org for a turn (from when it was ready), it hands
   * back the calls it has not started, unless its retirement ended meanwhile: the waiting org
   * gets the slot after the call under way. Not sooner: two busy orgs sharing a slot would switch
   * after every call, and each switch costs a process start.
   */
  #recallAfterTurn(sandbox: SandboxProcess): void {
    const recall = () => {
      if (!this.#closed && this.#retiring.has(sandbox)) sandbox.recall();
    };
    sandbox.ready.then(
      () => {
        const left = (sandbox.readyAt ?? 0) + this.#orgTurnMs - Date.now();
        if (left <= 0) recall();
        else setTimeout(recall, left).unref();
      },
      () => {}, // it died starting: nothing to hand back
    );
  }

  /**
   * Serves the waiting calls again in `ms` (and a little: timers may fire a millisecond early by
   * Date.now()).
   */
  #lookAgainIn(ms: number): void {
    if (this.#lookAgain !== undefined) return;
    this.#lookAgain = setTimeout(() => {
      this.#lookAgain = undefined;
      this.#serveWaiting();
    }, ms + 5);
    this.#lookAgain.unref();
  }

  /** Of the live processes that are not retiring and pass `fits`: the one whose loss costs least. */
  #cheapest(fits: (sandbox: SandboxProcess) => boolean): SandboxProcess | undefined {
    let best: SandboxProcess | undefined;
    for (const sandbox of this.#processes) {
      if (!sandbox.alive || this.#retiring.has(sandbox) || !fits(sandbox)) continue;
      if (
        best === undefined ||
        sandbox.affinities.size < best.affinities.size ||
        (sandbox.affinities.size === best.affinities.size && sandbox.lastUsedAt < best.lastUsedAt)
      ) {
        best = sandbox;
      }
    }
    return best;
  }
}
