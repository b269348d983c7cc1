// Which due timers a claim takes when there are more than it may take. Earliest due first across
// all orgs let one org with a backlog (50,000 timers due at once, or thousands of instances each
// ticking within its pacing budget) fill every claim: another org's timer, due now, waited until
// the whole backlog had been delivered. So each org's due timers take turns: an org's n-th
// earliest due timer has turn (its timers under lease now) + n, and a claim takes the lowest
// turns (on a tie, the earliest due). An org with nothing in flight is served at the very next
// claim, however small, and orgs that all have backlogs share the deliveries evenly; with one
// org, it is earliest due first as before. Stateless: the leases in the store are the memory of
// whose turn it was, shared by every claimer of a cluster. PostgreSQL ranks the same way in SQL
// (sql.ts, claimTimers); this is SQLite's.
//
// Which orgs a claim looks at: walking every org that has a timer (one index seek each) cost
// about 6 µs an org on PostgreSQL and 10 µs on SQLite, per claim, although most orgs' timers are
// not due: 60–100 ms a claim with 10,000 orgs, on SQLite on the main thread. So a claim first
// reads the due timers themselves, up to FEW_DUE_TIMERS of them: when there are fewer, that is
// all of them, and the orgs to rank are theirs. Only a backlog of at least that many due timers
// (rare, and then each claim takes a full batch) pays for the walk over every org, which finds
// an org whose due timer is behind the whole backlog.

/** Below this many claimable due timers, a claim ranks the orgs of those timers only. */
export const FEW_DUE_TIMERS = 1024;

/** A due, claimable timer of an org, as the org's earliest-due-first listing gives it. */
export type ClaimCandidate = { id: number; dueAt: number };

export type OrgCandidates = {
  /** The org's timers under a lease that has not lapsed. */
  leased: number;
  /** Its claimable due timers, earliest due first (at most the claim's limit of them). */
  due: readonly ClaimCandidate[];
};

/** A claimable due timer, with its org. */
export type DueCandidate = ClaimCandidate & { orgId: string };

/**
 * The orgs of `due`, all the claimable due timers there are (fewer than FEW_DUE_TIMERS), each
 * with its timers earliest due first, and `leased` from `leasedByOrg`.
 */
export function orgsOfDueTimers(
  due: readonly DueCandidate[],
  leasedByOrg: ReadonlyMap<string, number>,
): OrgCandidates[] {
  const byOrg = new Map<string, ClaimCandidate[]>();
  for (const { id, dueAt, orgId } of due) {
    const line = byOrg.get(orgId);
    if (line === undefined) byOrg.set(orgId, [{ id, dueAt }]);
    else line.push({ id, dueAt });
  }
  return [...byOrg].map(([orgId, line]) => ({
    leased: leasedByOrg.get(orgId) ?? 0,
    due: line.sort((a, b) => a.dueAt - b.dueAt || a.id - b.id),
  }));
}

/** The ids a claim of at most `limit` timers takes, in turn order. */
export function pickFairly(orgs: Iterable<OrgCandidates>, limit: number): number[] {
  const ranked: { id: number; dueAt: number; turn: number }[] = [];
  for (const { leased, due } of orgs) {
    due.forEach(({ id, dueAt }, index) => ranked.push({ id, dueAt, turn: leased + index + 1 }));
  }
  ranked.sort((a, b) => a.turn - b.turn || a.dueAt - b.dueAt || a.id - b.id);
  return ranked.slice(0, limit).map((candidate) => candidate.id);
}
