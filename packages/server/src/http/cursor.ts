// Opaque paging cursors: the last row's position, as base64url JSON. The schema decides which
// positions a listing accepts, so a forged cursor is a 400, never a query with odd values.
import type { z } from "zod";
import { InvalidParameterError } from "../errors.js";

/** Rows per page of every listing. */
export const PAGE_SIZE = 100;

export function encodeCursor(position: unknown): string {
  return Buffer.from(JSON.stringify(position)).toString("base64url");
}

export function decodeCursor<T>(cursor: string | undefined, schema: z.ZodType<T>): T | undefined {
  if (cursor === undefined || cursor === "") return undefined;
  try {
    const parsed = schema.safeParse(JSON.parse(Buffer.from(cursor, "base64url").toString()));
    if (parsed.success) return parsed.data;
  } catch {
    // fall through: not base64url JSON
  }
  throw new InvalidParameterError("cursor", "cursor is not one this server gave out");
}

/**
 * One page from a listing asked for `PAGE_SIZE + 1` rows: the extra row only tells that more
 * follow, and then the cursor is the position of the last row shown (absent on the last page).
 * `cutShort`: the store stopped the page early (at its byte budget), so more may follow however
 * few rows came; the page then ends with a cursor, and the next may be empty.
 */
export function pageOf<R, T>(
  rows: R[],
  positionOf: (row: R) => unknown,
  present: (row: R) => T,
  cutShort = false,
): { items: T[]; cursor?: string } {
  const shown = rows.slice(0, PAGE_SIZE);
  const last = shown[shown.length - 1];
  const items = shown.map(present);
  return (rows.length > PAGE_SIZE || cutShort) && last !== undefined
    ? { items, cursor: encodeCursor(positionOf(last)) }
    : { items };
}
