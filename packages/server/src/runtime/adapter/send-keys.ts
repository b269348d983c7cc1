// Under which timer key each delayed event a machine sends itself is stored. XState fires every
// delayed event it armed, even two armed under one id (XState 4 gives a send the event's type
// as its id by default), and a cancel by id reaches the one armed last. The store keeps one timer
// per key, so each arm gets a key of its own, and the instance's snapshot remembers which key
// the last arm under each id took.

/** Kept beside XState's own fields in the persisted snapshot (XState ignores it on restore). */
export const SEND_KEYS_FIELD = "backstateSendKeys";

/** `next`: numbers the keys; `latest`: the key of the last delayed event armed under each id. */
export type SendKeys = { next: number; latest: Record<string, string> };

/** The send keys a persisted snapshot carries; none for one written before they were kept. */
export function sendKeysOf(persisted: unknown): SendKeys {
  const kept = (persisted as Record<string, unknown> | null)?.[SEND_KEYS_FIELD] as
    Partial<SendKeys> | undefined;
  const next = typeof kept?.next === "number" && Number.isSafeInteger(kept.next) ? kept.next : 0;
  const latest: Record<string, string> = {};
  if (kept?.latest && typeof kept.latest === "object") {
    for (const [id, key] of Object.entries(kept.latest))
      if (typeof key === "string") latest[id] = key;
  }
  return { next, latest };
}

/** A new key for a delayed event armed under `id`, which a cancel of `id` now reaches. */
export function armKey(keys: SendKeys, id: string): string {
  keys.next += 1;
  const key = `${id}#${keys.next}`;
  keys.latest[id] = key;
  return key;
}

/**
 * The key a cancel of `id` reaches: the last one armed under it (no longer reachable after),
 * or `id` itself, as timers armed before keys were numbered are stored.
 */
export function cancelKey(keys: SendKeys, id: string): string {
  const key = keys.latest[id] ?? id;
  delete keys.latest[id];
  return key;
}

/** Stores the keys with the snapshot, when there are any to remember. */
export function keepSendKeys(persisted: Record<string, unknown>, keys: SendKeys): void {
  if (keys.next > 0) persisted[SEND_KEYS_FIELD] = keys;
}
