// Services the store lists as pending but that run nowhere: stopped at the settle deadline or by
// a pause, or lost with their sandbox or a restart. Each is owed an error event, delivered before
// the instance's next event, in the shape its machine's XState generation expects.
import { ConflictError } from "../errors.js";
import type { MachineEvent } from "../runtime/adapter-protocol.js";
import type { MachineRuntime, VersionRef } from "../runtime/machine-runtime.js";
import { instanceRecord } from "../store/instance-record.js";
import type { InstanceRecord, Store } from "../store/store.js";
import type { ActivityTracker } from "./activity.js";
import type { InstanceCache } from "./instance-cache.js";
import type { Logger } from "./logger.js";
import type { ServiceLeases } from "./service-leases.js";
import { instanceRefOf, versionOf, type Committed, type StepCommitter } from "./step-committer.js";

export class LostServices {
  private readonly generations = new Map<string, Promise<4 | 5>>();

  constructor(
    private readonly deps: {
      store: Store;
      runtime: MachineRuntime;
      activity: ActivityTracker;
      committer: StepCommitter;
      cache: InstanceCache;
      logger: Logger;
      leases: ServiceLeases;
      /**
       * Processes the events a committed step sent its machine itself (XState v4 `send`), as
       * after any step; resolves with the last commit.
       */
      selfEvents: (committed: Committed) => Promise<Committed>;
    },
  ) {}

  /**
   * Delivers the error event of every service the store says is pending but that runs nowhere
   * (`known`: as lostOf said just before, on this record), and returns the instance as it then
   * stands (the same record when there was nothing to do).
   * Called inside the instance's mailbox. Throws ConflictError when the instance changed since
   * `instance` was read: the caller starts again from a fresh load.
   */
  async settle(instance: InstanceRecord, known?: readonly string[]): Promise<InstanceRecord> {
    const ref = instanceRefOf(instance);
    const lost = known ?? (await this.lostOf(instance));
    let current = instance;
    for (const serviceId of lost) {
      // An error event delivered before may have stopped it (left the state that invoked it) or
      // started it again (re-entered that state): no error is owed for its old run then.
      if (!current.pendingServices.includes(serviceId)) continue;
      if (this.deps.activity.isRunning(ref, serviceId)) continue;
      const event = await this.errorEventFor(current, serviceId);
      let committed: Committed;
      try {
        committed = await this.deps.committer.transition(current, event, {
          kind: "service",
          serviceId,
        });
      } catch (err) {
        // Computed on a stale record: what the instance now holds may owe nothing, or other things.
        if (err instanceof ConflictError) throw err;
        this.deps.logger.warn("the error event of a lost service failed; dropping it", {
          instance: ref,
          serviceId,
          error: String(err),
        });
        current = await this.drop(current, serviceId);
        continue;
      }
      // The error step is committed: the events it sent the machine itself come next, before
      // the event that found the service lost (they were dropped when only its record was kept).
      current = (await this.deps.selfEvents(committed)).instance;
    }
    return current;
  }

  /**
   * The services `settle` owes an error event (none: it will write nothing): pending ones that
   * run neither here nor, as far as its lease says, on another node.
   */
  async lostOf(instance: InstanceRecord): Promise<string[]> {
    const ref = instanceRefOf(instance);
    const lost = instance.pendingServices.filter((id) => !this.deps.activity.isRunning(ref, id));
    if (lost.length === 0 || !(await this.deps.leases.heldElsewhere(instance))) return lost;
    return [];
  }

  /**
   * Takes a service off the instance's pending list without a transition, and returns the
   * instance as it then stands. The store refuses (ConflictError) when the row changed since
   * `instance` was read: a list computed from a stale one would undo another writer's change.
   */
  async drop(instance: InstanceRecord, serviceId: string): Promise<InstanceRecord> {
    const pendingServices = instance.pendingServices.filter((id) => id !== serviceId);
    try {
      await this.deps.store.setPendingServices(instance.id, pendingServices, instance);
    } catch (err) {
      this.deps.cache.forget(instance);
      throw err;
    }
    const dropped = instanceRecord({ ...instance, pendingServices });
    this.deps.cache.remember(dropped);
    return dropped;
  }

  private async errorEventFor(instance: InstanceRecord, serviceId: string): Promise<MachineEvent> {
    const generation = await this.generationOf(versionOf(instance, instance.machineVersionId));
    const error = {
      name: "ServiceLost",
      message: "the service was stopped before it finished (timeout, restart or pause)",
    };
    return generation === 5
      ? {
          type: `xstate.error.actor.${serviceId}`,
          error,
          actorId: serviceId,
        }
      : { type: `error.platform.${serviceId}`, data: error };
  }

  private generationOf(version: VersionRef): Promise<4 | 5> {
    let generation = this.generations.get(version.versionId);
    if (!generation) {
      generation = this.deps.runtime.inspect(version).then((result) => result.xstateVersion);
      generation.catch(() => this.generations.delete(version.versionId));
      this.generations.set(version.versionId, generation);
    }
    return generation;
  }
}
