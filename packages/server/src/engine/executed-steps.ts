// Which instance each step this node had executed lately belongs to (by name, and by the row id
// that tells a deleted instance from one made again under its name). An event a step's action
// sends its own instance (XState 5's `self.send`) comes back from the sandbox naming the step and
// the instance, and the sandbox runs machine code: it may name any instance of its org. Only an
// instance this node had a step executed for, in that sandbox's org, under that step's id, takes
// it; so machine code reaches no instance whose steps it was not running. Kept for a while (a
// send may come from a timer an action set) and for so many steps, the oldest forgotten first.

import { MAX_STEP_ID_CHARS } from "../runtime/adapter-protocol.js";

export type ExecutedStepLimits = {
  /** How long after its execute a step's sends are taken. */
  keepMs: number;
  /** How many steps are remembered at most. */
  maxSteps: number;
};

export const EXECUTED_STEP_LIMITS: ExecutedStepLimits = { keepMs: 90_000, maxSteps: 100_000 };

/** Re-exported: acceptStep refuses a step with a longer id; this keeps none, whoever records. */
export { MAX_STEP_ID_CHARS };

export class ExecutedSteps {
  /** By step id, in the order they were executed (Map keeps insertion order). */
  private readonly steps = new Map<
    string,
    { instanceRef: string; instanceId: number; at: number }
  >();

  constructor(
    private readonly now: () => number,
    private readonly limits: ExecutedStepLimits = EXECUTED_STEP_LIMITS,
  ) {}

  /** Step `stepId` of `instanceRef` (the instance whose row id is `instanceId`) executes now. */
  record(stepId: string, instanceRef: string, instanceId: number): void {
    this.forgetOld();
    if (typeof stepId !== "string" || stepId.length > MAX_STEP_ID_CHARS) return;
    this.steps.delete(stepId);
    this.steps.set(stepId, { instanceRef, instanceId, at: this.now() });
    // One over at most: each record adds one.
    if (this.steps.size > this.limits.maxSteps) this.forgetOldest();
  }

  /**
   * The row id of the instance `stepId` was executed for here lately, if it was for
   * `instanceRef`; undefined otherwise. An instance deleted and made again under the name has
   * another id: what its predecessor's actions send is not for it.
   */
  instanceIdFor(stepId: string, instanceRef: string): number | undefined {
    this.forgetOld();
    const step = this.steps.get(stepId);
    return step?.instanceRef === instanceRef ? step.instanceId : undefined;
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
