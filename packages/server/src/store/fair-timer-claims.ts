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

/** A due, claimable timer of an org, as the org's earliest-due-first listing gives it. */
export type ClaimCandidate = { id: number; dueAt: number };

export type OrgCandidates = {
  /** The org's timers under a lease that has not lapsed. */
  leased: number;
  /** Its claimable due timers, earliest due first (at most the claim's limit of them). */
  due: readonly ClaimCandidate[];
};

/** The ids a claim of at most `limit` timers takes, in turn order. */
export function pickFairly(orgs: Iterable<OrgCandidates>, limit: number): number[] {
  const ranked: { id: number; dueAt: number; turn: number }[] = [];
  for (const { leased, due } of orgs) {
    due.forEach(({ id, dueAt }, index) => ranked.push({ id, dueAt, turn: leased + index + 1 }));
  }
  ranked.sort((a, b) => a.turn - b.turn || a.dueAt - b.dueAt || a.id - b.id);
  return ranked.slice(0, limit).map((candidate) => candidate.id);
}
