// Durable timers (delayed events): finding the next wake-up, and leasing due timers to a deliverer.
import type Database from "better-sqlite3";
import type { EpochMs, TimerRecord } from "../store.js";
import {
  FEW_DUE_TIMERS,
  orgsOfDueTimers,
  pickFairly,
  type OrgCandidates,
} from "../fair-timer-claims.js";
import { toTimerRecord } from "../rows.js";
import type { Statements } from "./statements.js";

/**
 * When `claimDueTimers` will next find something: the earliest due time of an unclaimed timer,
 * or, for a leased one, the later of its due time and the end of its lease (a deliverer that
 * died holding the lease must not strand its timer).
 */
export function nextTimerDue(s: Statements): EpochMs | undefined {
  const unclaimed = s.earliestUnclaimedDue.get();
  const leaseEnd = s.earliestLeaseEnd.get() ?? undefined;
  if (unclaimed === undefined) return leaseEnd;
  if (leaseEnd === undefined) return unclaimed;
  return Math.min(unclaimed, leaseEnd);
}

export function timerClaimer(
  db: Database.Database,
  s: Statements,
): (now: EpochMs, limit: number, leaseMs: number) => TimerRecord[] {
  // IMMEDIATE: the select and the lease happen under the write lock, so two processes sharing
  // the database file never lease the same timer.
  const claim = db.transaction((now: EpochMs, limit: number, leaseMs: number) => {
    const picked = pickFairly(claimableByOrg(s, now, limit), limit);
    const rows = picked.map((id) => s.dueTimerById.get(id)).filter((row) => row !== undefined);
    for (const row of rows) s.leaseTimer.run(now + leaseMs, row.id);
    rows.sort((a, b) => a.dueAt - b.dueAt || a.id - b.id);
    return rows.map((row) => toTimerRecord(row, now + leaseMs));
  });
  return (now, limit, leaseMs) => {
    if (!Number.isInteger(limit) || limit < 0) throw new TypeError("limit must be an integer ≥ 0");
    // At least 1 ms: each claim's lease end then differs from the one before it, and tells
    // which claim a failure is recorded by (recordTimerFailure).
    if (!Number.isInteger(leaseMs) || leaseMs < 1)
      throw new TypeError("leaseMs must be an integer ≥ 1");
    return limit === 0 ? [] : claim.immediate(now, limit, leaseMs);
  };
}

/** Each org that has claimable due timers: how many it has under lease, and its earliest. */
function claimableByOrg(s: Statements, now: EpochMs, limit: number): Iterable<OrgCandidates> {
  const leased = new Map(s.leasedTimersByOrg.all(now).map((row) => [row.orgId, row.leased]));
  const due = s.claimableDue.all(now, now, FEW_DUE_TIMERS);
  return due.length < FEW_DUE_TIMERS
    ? orgsOfDueTimers(due, leased)
    : everyOrg(s, now, limit, leased);
}

/** The walk over every org that has a timer, for a backlog of due timers (fair-timer-claims.ts). */
function* everyOrg(
  s: Statements,
  now: EpochMs,
  limit: number,
  leased: ReadonlyMap<string, number>,
): Generator<OrgCandidates> {
  for (let org = s.firstTimerOrg.get(); org != null; org = s.nextTimerOrg.get(org)) {
    const due = s.claimableOfOrg.all(org, now, now, limit);
    if (due.length > 0) yield { leased: leased.get(org) ?? 0, due };
  }
}
