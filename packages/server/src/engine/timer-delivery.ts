// The delivery of a due timer the scheduler claimed (a delayed event the machine armed, or the
// backstop of an event it sent itself) inside its instance's mailbox: dropped when the instance
// has finished, else stepped as the timer's event, charged to the instance's timer pacing, with
// whatever the step sent its machine itself paced too.
import type { MachineEvent } from "../runtime/adapter-protocol.js";
import type { InstanceKey, InstanceRecord, Store, TimerRecord } from "../store/store.js";
import type { Clock } from "./clock.js";
import { parseEnvelope } from "./instance-state.js";
import type { Logger } from "./logger.js";
import { instanceRefOf, type Committed, type StepCommitter } from "./step-committer.js";
import type { TimerPacing } from "./timer-pacing.js";
import { isSelfEventBackstopKey } from "./transition-commit.js";

export class TimerDelivery {
  constructor(
    private readonly deps: {
      store: Store;
      clock: Clock;
      logger: Logger;
      committer: StepCommitter;
      timerPacing: TimerPacing;
      /** Runs work in the instance's mailbox, after every external event posted before it. */
      exclusive: <T>(ref: string, task: () => Promise<T>) => Promise<T>;
      /**
       * Runs `work` on the record the instance's last write on this node left, else on the stored
       * one, and again on a fresh load when the instance really moved on (the engine's).
       */
      retryingConflicts: <T>(
        key: InstanceKey,
        work: (base: { instance: InstanceRecord; remembered: boolean }) => Promise<T>,
      ) => Promise<T>;
      /**
       * What every delivery of an outside event starts with: the instance, unless paused, with the
       * error events owed for its lost services delivered first (the engine's).
       */
      prepareDelivery: (instance: InstanceRecord) => Promise<InstanceRecord>;
      /**
       * Steps the events a committed step sent its machine itself, each charged to the
       * instance's timer pacing as the timer's own event is; resolves with the last commit.
       */
      processSelfEvents: (committed: Committed) => Promise<Committed>;
    },
  ) {}

  async deliverTimer(timer: TimerRecord): Promise<void> {
    const event = JSON.parse(timer.event) as MachineEvent;
    const ref = instanceRefOf(timer.instance);
    await this.deps.exclusive(ref, () =>
      this.deps.retryingConflicts(timer.instance, async (base) => {
        const instance = await this.deps.prepareDelivery(base.instance);
        // XState stops a machine that reached its final state, and with it every delayed event
        // it had scheduled: one still stored is dropped, never delivered to the finished
        // instance. (A backstop stands in for an event already sent, and goes on as that event.)
        // Only on the timer's own row: a record of another (remembered from before a delete)
        // goes the usual way, whose commit is refused and tried again on a fresh read.
        const finished =
          instance.id === timer.instanceId && parseEnvelope(instance.snapshot).view.done;
        if (finished && !isSelfEventBackstopKey(timer.key)) {
          await this.deps.store.cancelTimers(instance.id, [timer.key]);
          this.deps.logger.info("a delayed event of a finished instance was dropped", {
            instance: ref,
            event: event.type,
          });
          return undefined;
        }
        const origin = { kind: "timer", timerId: timer.id, timerKey: timer.key } as const;
        // Counted before the step, so the timers it arms are paced once the budget is spent.
        this.deps.timerPacing.charge(ref, 1, this.deps.clock.now());
        const committed = await this.deps.committer.transition(instance, event, origin);
        return this.deps.processSelfEvents(committed);
      }),
    );
  }
}
