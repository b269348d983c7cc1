// Which instances have services running, and who is waiting for them to settle. An instance is
// settled when none of its services runs; a waiter gives up at the deadline, which every external
// or timer event pushes back. In memory only: after a restart nothing is running, and the store's
// list of pending services says which error events are owed.
import type { VersionRef } from "../runtime/machine-runtime.js";
import type { Clock, TimerHandle } from "./clock.js";

type Activity = {
  version: VersionRef;
  services: Set<string>;
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
  ) {}

  /** An external or timer event reached the instance: its deadline moves to now + timeout. */
  touch(instanceRef: string): void {
    const activity = this.byInstance.get(instanceRef);
    if (activity) this.arm(instanceRef, activity, this.clock.now() + this.settleTimeoutMs);
  }

  started(instanceRef: string, version: VersionRef, serviceIds: string[]): void {
    if (serviceIds.length === 0) return;
    let activity = this.byInstance.get(instanceRef);
    if (!activity) {
      activity = { version, services: new Set(), deadline: 0, timer: undefined, waiters: [] };
      this.byInstance.set(instanceRef, activity);
      // Services start right after the event that called for them, so the deadline runs from now.
      this.arm(instanceRef, activity, this.clock.now() + this.settleTimeoutMs);
    }
    for (const id of serviceIds) activity.services.add(id);
  }

  /** Services that finished (their result committed), stopped, or never started. */
  ended(instanceRef: string, serviceIds: string[]): void {
    const activity = this.byInstance.get(instanceRef);
    if (!activity) return;
    for (const id of serviceIds) activity.services.delete(id);
    if (activity.services.size === 0) this.settle(instanceRef, activity);
  }

  /** Everything running for the instance is gone (stopped at the deadline, or its sandbox died). */
  lost(instanceRef: string): void {
    const activity = this.byInstance.get(instanceRef);
    if (activity) this.settle(instanceRef, activity);
  }

  isRunning(instanceRef: string, serviceId: string): boolean {
    return this.byInstance.get(instanceRef)?.services.has(serviceId) ?? false;
  }

  running(instanceRef: string): string[] {
    return [...(this.byInstance.get(instanceRef)?.services ?? [])];
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
      const current = this.byInstance.get(instanceRef);
      if (current !== activity) return;
      const ids = [...activity.services];
      this.settle(instanceRef, activity);
      this.onDeadline(instanceRef, activity.version, ids);
    }, deadline - this.clock.now());
  }

  private settle(instanceRef: string, activity: Activity): void {
    activity.timer?.cancel();
    this.byInstance.delete(instanceRef);
    for (const resolve of activity.waiters.splice(0)) resolve();
  }
}
