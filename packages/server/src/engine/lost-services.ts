// Services the store lists as pending but that run nowhere: stopped at the settle deadline, or
// lost with their sandbox or a restart. Each is owed an error event, delivered before the
// instance's next event, in the shape its machine's XState generation expects.
import type { MachineEvent } from "../runtime/adapter-protocol.js";
import type { MachineRuntime, VersionRef } from "../runtime/machine-runtime.js";
import type { InstanceRecord, Store } from "../store/store.js";
import type { ActivityTracker } from "./activity.js";
import type { Logger } from "./logger.js";
import { instanceRefOf, versionOf, type StepCommitter } from "./step-committer.js";

export class LostServices {
  private readonly generations = new Map<string, Promise<4 | 5>>();

  constructor(
    private readonly deps: {
      store: Store;
      runtime: MachineRuntime;
      activity: ActivityTracker;
      committer: StepCommitter;
      logger: Logger;
    },
  ) {}

  /**
   * Delivers the error event of every service the store says is pending but that runs nowhere,
   * and returns the instance as it then stands. Called inside the instance's mailbox.
   */
  async settle(instance: InstanceRecord): Promise<InstanceRecord> {
    const ref = instanceRefOf(instance);
    const lost = instance.pendingServices.filter((id) => !this.deps.activity.isRunning(ref, id));
    let current = instance;
    for (const serviceId of lost) {
      const event = await this.errorEventFor(current, serviceId);
      try {
        current = (
          await this.deps.committer.transition(current, event, { kind: "service", serviceId })
        ).instance;
      } catch (err) {
        this.deps.logger.warn("the error event of a lost service failed; dropping it", {
          instance: ref,
          serviceId,
          error: String(err),
        });
        const remaining = current.pendingServices.filter((id) => id !== serviceId);
        await this.deps.store.setPendingServices(current.id, remaining);
        current = { ...current, pendingServices: remaining };
      }
    }
    return current;
  }

  private async errorEventFor(instance: InstanceRecord, serviceId: string): Promise<MachineEvent> {
    const generation = await this.generationOf(versionOf(instance, instance.machineVersionId));
    const error = {
      name: "ServiceLost",
      message: "the service was stopped before it finished (timeout or restart)",
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
