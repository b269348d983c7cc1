// Which instance each step this node had executed lately belongs to (by name, and by the row id
// that tells a deleted instance from one made again under its name). An event a step's action
// sends its own instance (XState 5's `self.send`) comes back from the sandbox naming the step and
// the instance, and the sandbox runs machine code: it may name any instance of its org. Only an
// instance this node had a step executed for, in that sandbox's org, under that step's id, takes
// it; so machine code reaches no instance whose steps it was not running. Kept for a while (a
// send may come from a timer an action set) and for so many steps, the oldest forgotten first.
//
// Each step also keeps the self-send chain it belongs to: a step applied from an event an action
// sent, or one the machine sent itself with sendTo, carries on the chain of the step that sent it,
// and both kinds of event count against its one budget, so that a machine whose every step sends
// itself another event is stopped after so many (the engine's maxSelfEvents), however the sends
// are spread over steps, timers, step ids and the two ways of sending. A step caused otherwise (a
// client's event, a timer, a service's event, creation) starts a chain when its actions first
// send, and another for the events it sends itself with sendTo.

import { MAX_STEP_ID_CHARS } from "../runtime/adapter-protocol.js";

export type ExecutedStepLimits = {
  /** How long after its execute a step's sends are taken. */
  keepMs: number;
  /** How many steps are remembered at most. */
  maxSteps: number;
};

/**
 * The events actions may still send along one chain; shared by every step of the chain (so it
 * lives as long as the last of them is remembered, and no longer).
 */
export type SelfSendChain = {
  /** How many more events the chain's actions may send their instance. */
  left: number;
  /** Whether a drop past the budget was logged already (once per chain is enough). */
  warned: boolean;
};

/** A chain's start: `budget` events its steps may send their instance, of either kind. */
export function newSelfSendChain(budget: number): SelfSendChain {
  return { left: budget, warned: false };
}

/**
 * Takes one event from the chain's budget: false (and nothing taken) once it is spent. `firstPast`
 * is called the first time one is refused, so a chain is reported once, however it sends.
 */
export function takeFromChain(chain: SelfSendChain, firstPast: () => void): boolean {
  if (chain.left > 0) {
    chain.left--;
    return true;
  }
  if (!chain.warned) {
    chain.warned = true;
    firstPast();
  }
  return false;
}

/** What a step this node executed may send its instance: its instance's row id, and its chain. */
export type ExecutedStep = { instanceId: number; chain: SelfSendChain };

export const EXECUTED_STEP_LIMITS: ExecutedStepLimits = { keepMs: 90_000, maxSteps: 100_000 };

/** Re-exported: acceptStep refuses a step with a longer id; this keeps none, whoever records. */
export { MAX_STEP_ID_CHARS };

export class ExecutedSteps {
  /** By step id, in the order they were executed (Map keeps insertion order). */
  private readonly steps = new Map<
    string,
    { instanceRef: string; instanceId: number; at: number; chain: SelfSendChain | undefined }
  >();

  constructor(
    private readonly now: () => number,
    private readonly limits: ExecutedStepLimits = EXECUTED_STEP_LIMITS,
  ) {}

  /**
   * Step `stepId` of `instanceRef` (the instance whose row id is `instanceId`) executes now; on
   * `chain` when an action's self-send caused it (directly or through the steps it caused).
   */
  record(stepId: string, instanceRef: string, instanceId: number, chain?: SelfSendChain): void {
    this.forgetOld();
    if (typeof stepId !== "string" || stepId.length > MAX_STEP_ID_CHARS) return;
    this.steps.delete(stepId);
    this.steps.set(stepId, { instanceRef, instanceId, at: this.now(), chain });
    // One over at most: each record adds one.
    if (this.steps.size > this.limits.maxSteps) this.forgetOldest();
  }

  /**
   * What step `stepId`, if it was executed here lately for `instanceRef`, may send its instance:
   * the row id of the instance it was executed for (an instance deleted and made again under the
   * name has another id: what its predecessor's actions send is not for it) and the step's chain,
   * started with `budget` events for a step that was on none (kept with the step, so that its
   * later sends, from a timer say, count on it too).
   */
  sender(stepId: string, instanceRef: string, budget: number): ExecutedStep | undefined {
    this.forgetOld();
    const step = this.steps.get(stepId);
    if (step?.instanceRef !== instanceRef) return undefined;
    step.chain ??= newSelfSendChain(budget);
    return { instanceId: step.instanceId, chain: step.chain };
  }

  private forgetOld(): void {
    const oldest = this.now() - this.limits.keepMs;
    for (const [stepId, { at }] of this.steps) {
      if (at >= oldest) return;
      this.steps.delete(stepId);
    }
  }

  private forgetOldest(): void {
    for (const stepId of this.steps.keys()) {
      this.steps.delete(stepId);
      return;
    }
  }
}
