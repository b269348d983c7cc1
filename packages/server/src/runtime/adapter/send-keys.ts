// Under which timer key each delayed event a machine sends itself is stored. XState fires every
// delayed event it armed, even two armed under one id (XState 4 gives a send the event's type
// as its id by default), and a cancel by id reaches the one armed last. The store keeps one timer
// per key, so each arm gets a key of its own, and the instance's snapshot remembers which key
// the last arm under each id took.

/** Kept beside XState's own fields in the persisted snapshot (XState ignores it on restore). */
export const SEND_KEYS_FIELD = "backstateSendKeys";

/**
 * How many ids the snapshot remembers the last key of. Ids can be made up as the machine goes
 * (`id: "remind-" + item.id`), and a delayed event that fires does not tell the driver: without a
 * bound, such a machine's snapshot would grow with every id it ever used. A cancel of an id
 * forgotten this way reaches only a timer stored under the bare id, as before keys were numbered.
 */
export const MAX_REMEMBERED_SEND_IDS = 256;

/**
 * `next`: numbers the keys; `latest`: the key of the last delayed event armed under each id, as
 * [id, key] pairs, the least recently armed first.
 */
export type SendKeys = { next: number; latest: Array<[id: string, key: string]> };

/** The send keys a persisted snapshot carries; none for one written before they were kept. */
export function sendKeysOf(persisted: unknown): SendKeys {
  const kept = (persisted as Record<string, unknown> | null)?.[SEND_KEYS_FIELD] as
    { next?: unknown; latest?: unknown } | undefined;
  const next = typeof kept?.next === "number" && Number.isSafeInteger(kept.next) ? kept.next : 0;
  const latest: SendKeys["latest"] = [];
  if (Array.isArray(kept?.latest)) {
    for (const pair of kept.latest as unknown[]) {
      if (Array.isArray(pair) && typeof pair[0] === "string" && typeof pair[1] === "string") {
        latest.push([pair[0], pair[1]]);
      }
    }
  }
  return { next, latest };
}

/** A new key for a delayed event armed under `id`, which a cancel of `id` now reaches. */
export function armKey(keys: SendKeys, id: string): string {
  keys.next += 1;
  const key = `${id}#${keys.next}`;
  forget(keys, id);
  keys.latest.push([id, key]);
  if (keys.latest.length > MAX_REMEMBERED_SEND_IDS) keys.latest.shift();
  return key;
}

/**
 * The key a cancel of `id` reaches: the last one armed under it (no longer reachable after),
 * or `id` itself, as timers armed before keys were numbered are stored.
 */
export function cancelKey(keys: SendKeys, id: string): string {
  return forget(keys, id) ?? id;
}

/** Stores the keys with the snapshot, when there are any to remember. */
export function keepSendKeys(persisted: Record<string, unknown>, keys: SendKeys): void {
  if (keys.next > 0) persisted[SEND_KEYS_FIELD] = keys;
}

/** Drops what is remembered of `id`; answers its key, if any was. */
function forget(keys: SendKeys, id: string): string | undefined {
  const at = keys.latest.findIndex(([known]) => known === id);
  if (at < 0) return undefined;
  const [[, key]] = keys.latest.splice(at, 1) as [[string, string]];
  return key;
}
