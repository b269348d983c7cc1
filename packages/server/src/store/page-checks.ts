// The checks every adapter makes of a listing's page (or a history purge's chunk) before it
// queries: one place, so the stores refuse the same misuse the same way.
import type { TransitionPage } from "./store.js";

export function checkLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 0) throw new TypeError("limit must be an integer ≥ 0");
}

/** The byte budget of a history page, as the queries take it (no budget: the largest integer). */
export function maxBytesOf(page: TransitionPage): number {
  const { maxBytes } = page;
  if (maxBytes === undefined) return Number.MAX_SAFE_INTEGER;
  if (!Number.isInteger(maxBytes) || maxBytes < 1) {
    throw new TypeError("maxBytes must be a positive integer");
  }
  return maxBytes;
}

/** A purge chunk's size (see Store.purgeDeletedHistory): 0 would purge nothing, forever. */
export function checkPurgeChunk(maxRows: number): void {
  if (!Number.isInteger(maxRows) || maxRows < 1) {
    throw new TypeError("maxRows must be a positive integer");
  }
}
