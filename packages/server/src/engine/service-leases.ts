// Which node runs an instance's services, told to the other nodes through the store. Services run
// in the sandbox of the node that executed the step starting them, and only that node's activity
// tracker knows they run; another node handling the instance would otherwise take them for lost
// and deliver their error events while they still run. So a node leases an instance before it
// commits a step starting services there, renews the lease while any of its services run here,
// and ends it once none does; a node that dies leaves a lease that runs out, after which the
// others deliver the error events owed (lost-services.ts).
import { randomUUID } from "node:crypto";
import type { InstanceKey, Store } from "../store/store.js";
import type { ActivityTracker } from "./activity.js";
import type { Clock, TimerHandle } from "./clock.js";
import type { Logger } from "./logger.js";
import { instanceRefOf } from "./step-committer.js";

export type ServiceLeaseOptions = {
  store: Store;
  activity: ActivityTracker;
  clock: Clock;
  logger: Logger;
  /** How long a lease lasts unrenewed; renewed every third of it. */
  leaseMs: number;
  /** This node's name in the leases. Default: random, new with every start. */
  nodeId?: string;
};

type Leased = { key: InstanceKey; committing: number };

export class ServiceLeases {
  /** This node, as its leases name it. */
  readonly nodeId: string;
  /** The instances this node holds a lease on, with how many steps are about to commit there. */
  private readonly leased = new Map<string, Leased>();
  /** The store writes, one after another: a lease taken after one ended must land last. */
  private writes: Promise<void> = Promise.resolve();
  private timer: TimerHandle | undefined;
  private closed = false;

  constructor(private readonly options: ServiceLeaseOptions) {
    this.nodeId = options.nodeId ?? `node_${randomUUID()}`;
  }

  /**
   * Leases the instance for a step about to commit that starts services. Call the answered
   * function once the step is committed and its services are tracked (or it failed): until then
   * the lease is kept although nothing runs yet.
   */
  async hold(key: InstanceKey): Promise<() => void> {
    const ref = instanceRefOf(key);
    // The name alone: a record passed in would keep its snapshot alive as long as the lease.
    const { orgId, machineName, instanceName } = key;
    const entry = this.leased.get(ref) ?? {
      key: { orgId, machineName, instanceName },
      committing: 0,
    };
    entry.committing++;
    this.leased.set(ref, entry);
    this.schedule();
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      entry.committing--;
      if (this.options.activity.running(ref).length === 0) this.idle(ref);
    };
    try {
      await this.write((store) => store.leaseServices(this.nodeId, [entry.key], this.until()));
    } catch (err) {
      release();
      throw err;
    }
    return release;
  }

  /** Nothing of the instance runs here any more: this node's lease on it ends now. */
  idle(ref: string): void {
    const entry = this.leased.get(ref);
    if (entry === undefined || entry.committing > 0) return;
    this.leased.delete(ref);
    this.write((store) => store.endServiceLeases(this.nodeId, [entry.key], this.expired())).catch(
      (err: unknown) => {
        // It runs out on its own; meanwhile other nodes wait for it.
        this.options.logger.warn("could not end a service lease", {
          instance: ref,
          error: String(err),
        });
      },
    );
  }

  /** Whether another node's lease says it runs services of the instance now. */
  heldElsewhere(key: InstanceKey): Promise<boolean> {
    return this.options.store.servicesLeasedElsewhere(key, this.nodeId, this.options.clock.now());
  }

  /** Ends this node's leases (its services stop with it). */
  async close(): Promise<void> {
    this.closed = true;
    this.timer?.cancel();
    this.timer = undefined;
    const keys = [...this.leased.values()].map((entry) => entry.key);
    this.leased.clear();
    await this.write((store) => store.endServiceLeases(this.nodeId, keys, this.expired())).catch(
      (err: unknown) =>
        this.options.logger.warn("could not end service leases", { error: String(err) }),
    );
  }

  private write(operation: (store: Store) => Promise<void>): Promise<void> {
    const written = this.writes.then(() => operation(this.options.store));
    this.writes = written.catch(() => {});
    return written;
  }

  private until(): number {
    return this.options.clock.now() + this.options.leaseMs;
  }

  /** Leases that ran out this long ago are nobody's (their node died): removed on the way. */
  private expired(): number {
    return this.options.clock.now() - this.options.leaseMs;
  }

  private schedule(): void {
    if (this.closed || this.timer !== undefined) return;
    this.timer = this.options.clock.setTimeout(
      () => {
        this.timer = undefined;
        void this.renew().finally(() => {
          if (this.leased.size > 0) this.schedule();
        });
      },
      Math.max(1, Math.floor(this.options.leaseMs / 3)),
    );
  }

  /** Renews the leases of instances whose services run here (or are about to start). */
  private async renew(): Promise<void> {
    const keys = [...this.leased.values()].map((entry) => entry.key);
    if (keys.length === 0) return;
    try {
      await this.write((store) => store.leaseServices(this.nodeId, keys, this.until()));
    } catch (err) {
      // Tried again next round; meanwhile the leases may run out, and the others take over.
      this.options.logger.warn("could not renew service leases", { error: String(err) });
    }
  }
}
