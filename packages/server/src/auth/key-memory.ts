// The API keys this node has read lately, so a request can verify its token without a store
// read. Every key read fills it; only routes whose write re-checks the key inside its commit read
// from it (Route's keyCheckedAtCommit), so a key deleted on any node still fails at once. It may
// hold a deleted key for a while (a read that began before the delete can put it back): that
// costs such a request a sandbox step, never a write. Bounded, least recently used first out; key
// ids are never reused, so a remembered key is never another's.
import type { KeyRecord } from "../store/store.js";

const MAX_KEYS = 1_024;

export class KeyMemory {
  readonly #keys = new Map<string, KeyRecord>();

  get(keyId: string): KeyRecord | undefined {
    const key = this.#keys.get(keyId);
    if (key !== undefined) {
      // Re-inserted: Map order is the eviction order.
      this.#keys.delete(keyId);
      this.#keys.set(keyId, key);
    }
    return key;
  }

  /**
   * What the store just answered for `keyId`: the key, or undefined when it is gone. A key read
   * as it is remembered keeps the remembered record: what was verified with that very record
   * (verified-tokens.ts) still stands, however often other requests read the key.
   */
  update(keyId: string, key: KeyRecord | undefined): void {
    const remembered = this.#keys.get(keyId);
    this.#keys.delete(keyId);
    if (key === undefined) return;
    this.#keys.set(keyId, remembered !== undefined && sameKey(remembered, key) ? remembered : key);
    if (this.#keys.size > MAX_KEYS) this.#keys.delete(this.#keys.keys().next().value!);
  }

  get size(): number {
    return this.#keys.size;
  }
}

function sameKey(a: KeyRecord, b: KeyRecord): boolean {
  return (
    a.id === b.id &&
    a.orgId === b.orgId &&
    a.name === b.name &&
    a.secret === b.secret &&
    a.createdAt === b.createdAt &&
    a.scopes.length === b.scopes.length &&
    a.scopes.every((scope, i) => scope === b.scopes[i])
  );
}
