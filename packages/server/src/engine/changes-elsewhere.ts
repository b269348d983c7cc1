// What this node hears of other nodes' writes to instances (changed, deleted, paused, or changes
// it may have missed): what it remembers of them for its next writes is dropped, and the services
// running here that a delete or a pause elsewhere stopped there stop here too.
import type { InstanceKey, Store } from "../store/store.js";
import type { ActivityTracker, Run } from "./activity.js";
import type { InstanceCache } from "./instance-cache.js";
import type { Logger } from "./logger.js";
import { instanceKeyOfRef, instanceRefOf } from "./step-committer.js";

export class ChangesElsewhere {
  constructor(
    private readonly deps: {
      store: Store;
      activity: ActivityTracker;
      cache: InstanceCache;
      logger: Logger;
    },
  ) {}

  /**
   * Another node committed transition `sequence` of the instance: what this node remembers of it
   * for its next write is stale, and is dropped now rather than found out by a refused commit.
   * Nothing depends on being told: such a commit is refused anyway.
   */
  changedElsewhere(key: InstanceKey, sequence: number): void {
    this.deps.cache.forgetBefore(key, sequence);
  }

  /**
   * The instance's row `instanceId` was deleted (by another node; this node's own deletes come by
   * too, and so may another node's of an older version, which name no row): nothing remembered
   * of it stands, and its services running here stop now, as on the node that deleted it, so a
   * new instance of that name neither waits for them nor takes them for its own. Those started
   * for a row made since under the name are that instance's: they run on, however late this is
   * heard.
   */
  deletedElsewhere(key: InstanceKey, instanceId: number | undefined): void {
    this.deps.cache.forget(key);
    if (instanceId === undefined) return;
    this.stopServicesStoppedElsewhere(
      instanceRefOf(key),
      "deleted",
      (run) => run.instanceId === instanceId,
    );
  }

  /**
   * Another node paused the instance (its row `instanceId`; a node of an older version names
   * none) at transition `sequence`: its services running here stop now, as on the node that paused
   * it, and stay pending, so each one's error event comes before the first event after the resume.
   * Those a step after `sequence` started are not the pause's (the instance was resumed, and
   * stepped here, before this node heard of the pause), nor are those of another row (it was
   * deleted, and made again under its name): they run on.
   */
  pausedElsewhere(key: InstanceKey, sequence: number, instanceId?: number): void {
    this.deps.cache.forget(key);
    this.stopServicesStoppedElsewhere(
      instanceRefOf(key),
      "paused",
      (run) =>
        run.sequence <= sequence && (instanceId === undefined || run.instanceId === instanceId),
    );
  }

  /**
   * Other nodes' changes may have gone unheard: nothing remembered for the next writes is kept,
   * and the instances with services running here are looked up, so that those deleted meanwhile
   * (gone, or made again under their name) and those paused meanwhile (and still paused) have
   * their services stopped, as the missed notices would have done.
   */
  missedChangesElsewhere(): void {
    this.deps.cache.clear();
    void this.stopServicesChangedElsewhere();
  }

  /** Stops the services (those `which` picks) a pause or delete on another node stopped there. */
  private stopServicesStoppedElsewhere(
    ref: string,
    why: "paused" | "deleted",
    which: (run: Run) => boolean,
  ): void {
    const stopped = this.deps.activity.stopRuns(ref, which);
    if (stopped.length === 0) return;
    this.deps.logger.info(`stopped the services of an instance ${why} on another node`, {
      instance: ref,
      serviceIds: stopped,
    });
  }

  /** See missedChangesElsewhere: one instance after another, each a read of its row. */
  private async stopServicesChangedElsewhere(): Promise<void> {
    for (const ref of this.deps.activity.instances()) {
      // The rows whose services run here now: a row made under the name after the read below
      // is not in it, and its services (started after its creation) run on.
      const rows = this.deps.activity.rowsOf(ref);
      try {
        const instance = await this.deps.store.loadInstance(instanceKeyOfRef(ref));
        if (instance !== undefined) rows.delete(instance.id);
        // The other rows were deleted (perhaps made again under the name since).
        if (rows.size > 0) {
          this.stopServicesStoppedElsewhere(ref, "deleted", (run) => rows.has(run.instanceId));
        }
        // Paused now: no step committed since the pause, so every run here of the row is the
        // pause's.
        if (instance?.status === "paused") {
          const { id, sequence } = instance;
          this.stopServicesStoppedElsewhere(
            ref,
            "paused",
            (run) => run.instanceId === id && run.sequence <= sequence,
          );
        }
      } catch (err) {
        // Its services run on until they answer (their result is then refused while it is paused,
        // or when its row is gone) or until their deadline.
        this.deps.logger.warn(
          "could not check whether an instance was paused or deleted elsewhere",
          {
            instance: ref,
            error: String(err),
          },
        );
      }
    }
  }
}
