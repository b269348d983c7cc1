// Prechecked reads: the realtime hub must ask allowRead about every committed state before it
// shows it to a watcher. Asked separately, that is one more sandbox call per update, which
// doubles the sandbox traffic when every instance has a watcher. Instead the engine asks, with
// the step itself, about the readers watching the instance when the step is requested; the
// sandbox answers for the step's state (Step.readable), and the hub gets the answers with the
// update. A watcher that came later, or one over the limit, is asked about separately as before.
// Asked with the step, allowRead shares the step's call budget: one that never returns fails the
// step of a watched instance (where it would otherwise fail every read of that instance).
import type { JsonObject } from "../runtime/adapter-protocol.js";
import type { InstanceKey } from "../store/store.js";

/** One reader watching an instance, under the key the watcher groups its sockets by. */
export type Reader = { key: string; authContext: JsonObject };

/** Up to `limit` of the distinct readers watching an instance now (none when unwatched). */
export type ReadAudience = (key: InstanceKey, limit: number) => readonly Reader[];

/** allowRead's answers on a committed state, by reader key. */
export type ReadDecisions = ReadonlyMap<string, boolean>;

/** Readers asked with one step at most: more watchers' readers are asked about separately. */
export const MAX_PRECHECKED_READERS = 8;

export const nobodyWatches: ReadAudience = () => [];

/**
 * The decisions a step's answer carries for `readers`. The sandbox's answer is checked like
 * any of its output: anything but one boolean per reader counts as no answer at all, and each
 * reader is then asked separately.
 */
export function readDecisions(
  readers: readonly Reader[],
  readable: unknown,
): ReadDecisions | undefined {
  if (readers.length === 0 || !Array.isArray(readable) || readable.length !== readers.length) {
    return undefined;
  }
  if (!readable.every((allowed) => typeof allowed === "boolean")) return undefined;
  return new Map(readers.map((reader, i) => [reader.key, readable[i] === true]));
}
