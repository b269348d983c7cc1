// Which instances have services running, and who is waiting for them to settle. An instance is
// settled when none of its services runs; a waiter gives up at the deadline, which every external
// or timer event pushes back. In memory only: after a restart nothing is running, and the store's
// list of pending services says which error events are owed.
import type { VersionRef } from "../runtime/machine-runtime.js";
import type { Clock, TimerHandle } from "./clock.js";

/**
 * A service's current run: the step that started it, the sequence that step committed, the
 * instance row it committed to (a row deleted, and one made again under its name, share its ref)
 * and the machine version whose code runs it (that row's: a row made again may have another).
 */
export type Run = { runId: string; sequence: number; instanceId: number; version: VersionRef };

type Activity = {
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
    /**
     * Called when a deadline passes with services still running, or they are stopped early:
     * stop them, in the code of `version` (once per version their runs name).
     */
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

  /**
   * Services the step `run` names started (a re-entered invoke's new run replaces its old one).
   * A run of another row that the new one replaces belongs to nothing (that row was deleted: this
   * one took its name); in another version's code it is stopped here, as once forgotten nothing
   * would stop it. (In the same version's, the new run's start replaces it, and a stop sent now
   * could reach the sandbox after that start.)
   */
  started(instanceRef: string, serviceIds: string[], run: Run): void {
    if (serviceIds.length === 0) return;
    let activity = this.byInstance.get(instanceRef);
    if (!activity) {
      activity = { services: new Map(), deadline: 0, timer: undefined, waiters: [] };
      this.byInstance.set(instanceRef, activity);
      // Services start right after the event that called for them, so the deadline runs from now.
      this.arm(instanceRef, activity, this.clock.now() + this.settleTimeoutMs);
    }
    const orphaned: Array<[string, Run]> = [];
    for (const id of serviceIds) {
      const replaced = activity.services.get(id);
      if (
        replaced !== undefined &&
        replaced.instanceId !== run.instanceId &&
        replaced.version.versionId !== run.version.versionId
      ) {
        orphaned.push([id, replaced]);
      }
      activity.services.set(id, run);
    }
    this.stopInTheirVersions(instanceRef, orphaned);
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
    const picked = [...activity.services].filter(([, run]) => which(run));
    if (picked.length === activity.services.size) this.expire(instanceRef, activity);
    else if (picked.length > 0) {
      for (const [id] of picked) activity.services.delete(id);
      this.stopInTheirVersions(instanceRef, picked);
    }
    return picked.map(([id]) => id);
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
    const runs = [...activity.services];
    this.settle(instanceRef, activity);
    this.stopInTheirVersions(instanceRef, runs);
  }

  /** Has onDeadline stop each service in the version of its run: one call per version. */
  private stopInTheirVersions(instanceRef: string, runs: ReadonlyArray<[string, Run]>): void {
    const byVersion = new Map<string, { version: VersionRef; ids: string[] }>();
    for (const [id, { version }] of runs) {
      const group = byVersion.get(version.versionId);
      if (group) group.ids.push(id);
      else byVersion.set(version.versionId, { version, ids: [id] });
    }
    for (const { version, ids } of byVersion.values()) this.onDeadline(instanceRef, version, ids);
  }

  private settle(instanceRef: string, activity: Activity): void {
    activity.timer?.cancel();
    this.byInstance.delete(instanceRef);
    this.onIdle(instanceRef);
    for (const resolve of activity.waiters.splice(0)) resolve();
  }
}
