// The records this node's own writes left, per instance, so the next write of an instance builds on
// them instead of loading the row first. Only the write paths use it, inside the instance's
// mailbox; reads for clients always ask the store, which sees every node's writes.
//
// A remembered record may be stale (another node, or another engine on the same database, wrote
// since). That is safe because every write built on it is conditional: the store refuses it
// unless the row is still exactly as remembered (same id, sequence and pending services, and
// running), and a refused write forgets the record, so the retry loads the row afresh.
import type { InstanceKey, InstanceRecord } from "../store/store.js";
import { instanceRefOf } from "./step-committer.js";

export type InstanceCacheLimits = {
  /** How many instances are remembered at most; 0 remembers none. */
  maxEntries: number;
  /** How many snapshot characters all remembered records may hold together. */
  maxSnapshotChars: number;
};

export class InstanceCache {
  /** In use order: the least recently used instance first. */
  private readonly entries = new Map<string, InstanceRecord>();
  private snapshotChars = 0;

  constructor(private readonly limits: InstanceCacheLimits) {}

  get size(): number {
    return this.entries.size;
  }

  /** The record this node last wrote for the instance, if it is still remembered. */
  get(key: InstanceKey): InstanceRecord | undefined {
    const ref = instanceRefOf(key);
    const instance = this.entries.get(ref);
    if (instance !== undefined) {
      this.entries.delete(ref);
      this.entries.set(ref, instance);
    }
    return instance;
  }

  /**
   * Remembers what a write of this node left in the store. A paused instance is not remembered:
   * its next write must ask the store, where another node may have resumed it.
   */
  remember(instance: InstanceRecord): void {
    // One ref for the forget and the set: each ref built is hashed again when looked up.
    const ref = instanceRefOf(instance);
    this.#forgetRef(ref);
    if (instance.status !== "running") return;
    if (this.limits.maxEntries === 0 || instance.snapshot.length > this.limits.maxSnapshotChars) {
      return;
    }
    this.entries.set(ref, instance);
    this.snapshotChars += instance.snapshot.length;
    // Only a full cache walks its entries (a walk costs an iterator even when it stops at once).
    if (!this.#overLimits()) return;
    for (const [oldRef, oldest] of this.entries) {
      if (!this.#overLimits()) break;
      this.drop(oldRef, oldest);
    }
  }

  /** The instance's row changed, or may have, in a way no remembered record shows. */
  forget(key: InstanceKey): void {
    this.#forgetRef(instanceRefOf(key));
  }

  #forgetRef(ref: string): void {
    const instance = this.entries.get(ref);
    if (instance !== undefined) this.drop(ref, instance);
  }

  #overLimits(): boolean {
    // Negated, so a limit that is no number (NaN) counts as exceeded, as it always did.
    return !(
      this.entries.size <= this.limits.maxEntries &&
      this.snapshotChars <= this.limits.maxSnapshotChars
    );
  }

  /** Another node committed the instance's transition `sequence`: older records are stale. */
  forgetBefore(key: InstanceKey, sequence: number): void {
    const instance = this.entries.get(instanceRefOf(key));
    if (instance !== undefined && instance.sequence < sequence) this.forget(key);
  }

  clear(): void {
    this.entries.clear();
    this.snapshotChars = 0;
  }

  private drop(ref: string, instance: InstanceRecord): void {
    this.entries.delete(ref);
    this.snapshotChars -= instance.snapshot.length;
  }
}

/**
 * Whether the store's row is still the one `remembered` describes, as far as any write checks:
 * nothing committed (sequence), deleted and created again (id), paused or resumed (status), or
 * had its pending services changed since.
 */
export function unchanged(remembered: InstanceRecord, stored: InstanceRecord): boolean {
  return (
    stored.id === remembered.id &&
    stored.sequence === remembered.sequence &&
    stored.status === remembered.status &&
    stored.pendingServices.length === remembered.pendingServices.length &&
    stored.pendingServices.every((id, i) => id === remembered.pendingServices[i])
  );
}
