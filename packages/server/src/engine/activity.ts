// Which instances have services running, and who is waiting for them to settle. An instance is
// settled when none of its services runs; a waiter gives up at the deadline, which every external
// or timer event pushes back. In memory only: after a restart nothing is running, and the store's
// list of pending services says which error events are owed.
import type { VersionRef } from "../runtime/machine-runtime.js";
import type { Clock, TimerHandle } from "./clock.js";

/**
 * A service's current run: the step that started it, the sequence that step committed, and the
 * instance row it committed to (a row deleted, and one made again under its name, share its ref).
 */
export type Run = { runId: string; sequence: number; instanceId: number };

type Activity = {
  version: VersionRef;
  /** Running services: each id with its current run. */
  services: Map<string, Run>;
  deadline: number;
  timer: TimerHandle | undefined;
  waiters: Array<() => void>;
};

export class ActivityTracker {
  private readonly byInstance = new Map<string, Activity>();

  constructor(
    private readonly clock: Clock,
    private readonly settleTimeoutMs: number,
    /** Called when a deadline passes with services still running: stop them. */
    private readonly onDeadline: (
      instanceRef: string,
      version: VersionRef,
      serviceIds: string[],
    ) => void,
    /** Called when nothing runs for the instance any more (ended, stopped or lost). */
    private readonly onIdle: (instanceRef: string) => void = () => {},
  ) {}

  /** An external or timer event reached the instance: its deadline moves to now + timeout. */
  touch(instanceRef: string): void {
    const activity = this.byInstance.get(instanceRef);
    if (activity) this.arm(instanceRef, activity, this.clock.now() + this.settleTimeoutMs);
  }

  /** Services the step `run` names started (a re-entered invoke's new run replaces its old one). */
  started(instanceRef: string, version: VersionRef, serviceIds: string[], run: Run): void {
    if (serviceIds.length === 0) return;
    let activity = this.byInstance.get(instanceRef);
    if (!activity) {
      activity = { version, services: new Map(), deadline: 0, timer: undefined, waiters: [] };
      this.byInstance.set(instanceRef, activity);
      // Services start right after the event that called for them, so the deadline runs from now.
      this.arm(instanceRef, activity, this.clock.now() + this.settleTimeoutMs);
    }
    for (const id of serviceIds) activity.services.set(id, run);
  }

  /**
   * Services that finished (their result committed), stopped, or never started; with `runId`,
   * only those whose current run that step started (a result of a replaced run ends nothing).
   */
  ended(instanceRef: string, serviceIds: string[], runId?: string): void {
    const activity = this.byInstance.get(instanceRef);
    if (!activity) return;
    for (const id of serviceIds) {
      if (runId === undefined || activity.services.get(id)?.runId === runId) {
        activity.services.delete(id);
      }
    }
    if (activity.services.size === 0) this.settle(instanceRef, activity);
  }

  /** Everything running for the instance is gone (stopped at the deadline, or its sandbox died). */
  lost(instanceRef: string): void {
    const activity = this.byInstance.get(instanceRef);
    if (activity) this.settle(instanceRef, activity);
  }

  /**
   * Stops everything running for the instance now, as its deadline would (the instance was
   * deleted: its services belong to nothing, and a new instance of that name must not wait for
   * them or take them for its own).
   */
  stop(instanceRef: string): void {
    const activity = this.byInstance.get(instanceRef);
    if (activity) this.expire(instanceRef, activity);
  }

  /**
   * Stops the instance's services whose run `which` picks, as `stop` does, and answers their ids;
   * the others run on. (Another node paused the instance, or deleted its row, and this node may
   * hear of it only after further steps here started services that are not concerned.)
   */
  stopRuns(instanceRef: string, which: (run: Run) => boolean): string[] {
    const activity = this.byInstance.get(instanceRef);
    if (!activity) return [];
    const ids = [...activity.services].filter(([, run]) => which(run)).map(([id]) => id);
    if (ids.length === activity.services.size) this.expire(instanceRef, activity);
    else if (ids.length > 0) {
      for (const id of ids) activity.services.delete(id);
      this.onDeadline(instanceRef, activity.version, ids);
    }
    return ids;
  }

  /** The instance rows the instance's running services were started for. */
  rowsOf(instanceRef: string): Set<number> {
    const services = this.byInstance.get(instanceRef)?.services.values() ?? [];
    return new Set([...services].map((run) => run.instanceId));
  }

  /** Whether the service runs; with `runId`, in the run that step started. */
  isRunning(instanceRef: string, serviceId: string, runId?: string): boolean {
    const run = this.byInstance.get(instanceRef)?.services.get(serviceId);
    return run !== undefined && (runId === undefined || run.runId === runId);
  }

  running(instanceRef: string): string[] {
    return [...(this.byInstance.get(instanceRef)?.services.keys() ?? [])];
  }

  /** Resolves once the instance has no running services, or at its deadline. */
  whenSettled(instanceRef: string): Promise<void> {
    const activity = this.byInstance.get(instanceRef);
    if (!activity) return Promise.resolve();
    return new Promise((resolve) => activity.waiters.push(resolve));
  }

  /** Instance refs with services running, for shutdown and sandbox losses. */
  instances(): string[] {
    return [...this.byInstance.keys()];
  }

  private arm(instanceRef: string, activity: Activity, deadline: number): void {
    activity.deadline = deadline;
    activity.timer?.cancel();
    activity.timer = this.clock.setTimeout(() => {
      if (this.byInstance.get(instanceRef) === activity) this.expire(instanceRef, activity);
    }, deadline - this.clock.now());
  }

  /** The instance's services are stopped: it settles, and onDeadline stops them. */
  private expire(instanceRef: string, activity: Activity): void {
    const ids = [...activity.services.keys()];
    this.settle(instanceRef, activity);
    this.onDeadline(instanceRef, activity.version, ids);
  }

  private settle(instanceRef: string, activity: Activity): void {
    activity.timer?.cancel();
    this.byInstance.delete(instanceRef);
    this.onIdle(instanceRef);
    for (const resolve of activity.waiters.splice(0)) resolve();
  }
}
