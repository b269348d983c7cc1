// Applies transition commits on PostgreSQL: a group-commit batch is one statement, a call of a
// PL/pgSQL function (commit-function.ts) that writes each commit in a block of its own, so a
// failing commit is rolled back alone while the others stay, and sends their change notices. The
// statement runs in its own transaction: a whole batch costs one round trip, however many commits
// it holds, and one WAL flush.
import { randomUUID } from "node:crypto";
import { DatabaseError, type Pool, type PoolClient } from "pg";
import {
  AlreadyExistsError,
  BackstateError,
  ConflictError,
  NotFoundError,
  SigningKeyGoneError,
} from "../../errors.js";
import type { QueuedCommit } from "../commit-chains.js";
import { ConcurrencyLimit } from "../concurrency-limit.js";
import type { Outcome } from "../group-commit.js";
import type { CommitResult, InstanceKey, TimerToArm, TransitionCommit } from "../store.js";
import { settleLostBatch } from "./ambiguous-batch.js";
import { checkOut, endsSession } from "./connection.js";
import {
  BATCH_TIMEOUT_MS,
  COMMIT_BATCH,
  DEFINE_COMMIT_BATCH,
  LOCKED_ROW_WAIT_MS,
  type CommitFailure,
} from "./commit-function.js";
import { commitChange, originPrefix } from "./notices.js";

/** One commit as the function takes it (short names: the batch travels as one JSON text). */
type Element = {
  k: "c" | "e";
  o: string;
  m: string;
  n: string;
  id?: number;
  v: string;
  es: number;
  ep?: string;
  s: string;
  p: string;
  e: string;
  st: string;
  at: number;
  dt?: number;
  dk?: string;
  kid?: string;
  rk?: string[];
  uk?: string[];
  t?: Array<{ k: string; d: number; e: string; x?: 1 }>;
  a?: number;
  f?: 1;
  np: string;
};

type ElementResult = { ok: true; id: number; seq: number } | CommitFailure;

/** The function is created once per connection, in its temporary schema (pg_temp). */
const defined = new WeakSet<PoolClient>();

/**
 * The group-commit runner. Commits are applied in instance-key order (stable: one instance's
 * commits keep their order), so two nodes' batches take the locks they may wait for in the same
 * order and wait for each other rather than deadlock; outcomes are returned in the batch's order.
 * (The plain event commits, written together first, lock their rows with SKIP LOCKED: they never
 * wait, so they take no part in that order.) Throws when the statement as a whole fails: then
 * nothing of the batch was written; or when its connection broke and what it wrote cannot be read
 * back (see fateOf). Resolves after the commit, so with PostgreSQL's default `synchronous_commit`
 * every commit it reports is durable.
 *
 * A commit that found its row exactly as expected but held by another transaction ("locked")
 * is not refused: nothing changed the instance, or not yet. It is finished after its batch
 * (LockedRows), with the commits built on it, in a batch of its own that waits for that row;
 * the batches that follow do not wait for it, and neither do other instances' locked commits:
 * each instance's are finished in the order their batches found them, apart from the others',
 * with at most `maxRowWaits` such batches (each a pooled connection) under way at once.
 *
 * The transaction also sends change notices (NOTIFY on `notices.channel`) naming every commit
 * that succeeded: PostgreSQL delivers them to every listening node exactly when the batch commits.
 */
export function commitBatchRunner(
  pool: Pool,
  notices: { channel: string; origin: string },
  maxRowWaits: number,
  /** Called each time the database answers a batch (see recent-answer.ts). */
  answered: () => void,
): (batch: readonly QueuedCommit[]) => Promise<Outcome<CommitResult>[]> {
  const later = new LockedRows(pool, notices, answered, new ConcurrencyLimit(maxRowWaits));
  return (batch) => runBatch(pool, notices, answered, batch, later);
}

async function runBatch(
  pool: Pool,
  notices: { channel: string; origin: string },
  answered: () => void,
  batch: readonly QueuedCommit[],
  later: LockedRows,
): Promise<Outcome<CommitResult>[]> {
  const order = batch
    .map((queued, index) => ({ queued, index }))
    .sort(
      (a, b) =>
        compareKeys(a.queued.commit.instance, b.queued.commit.instance) || a.index - b.index,
    );
  const outcomes = new Array<Outcome<CommitResult>>(batch.length);
  const elements: Element[] = [];
  const sent: Array<{ queued: QueuedCommit; index: number }> = [];
  const position = new Map<QueuedCommit, number>();
  // Commits finished after the batch (see LockedRows), in the batch's (instance-key) order.
  const deferred = new Set<QueuedCommit>();
  for (const { queued, index } of order) {
    // Its predecessor is still to be finished after an earlier batch (or this one): so is this.
    if (queued.builtOn?.deferred === true) {
      queued.deferred = true;
      deferred.add(queued);
      continue;
    }
    const refused = addElement(queued, elements, position);
    if (refused !== undefined) {
      queued.failed = true;
      outcomes[index] = { ok: false, error: refused };
    } else sent.push({ queued, index });
  }
  if (elements.length === 0) return later.take(order, deferred, outcomes);
  let results: ElementResult[];
  try {
    results = await writeElements(pool, notices, answered, elements);
  } catch (error) {
    // The whole batch fails, the commits held back for a predecessor with it: none is deferred.
    for (const queued of deferred) queued.deferred = false;
    throw error;
  }
  sent.forEach(({ queued, index }, i) => {
    const result = results[i]!;
    const after = elements[i]!.a;
    if (result.ok) {
      outcomes[index] = outcomeOf(queued, result);
    } else if (
      result.err === "locked" ||
      (result.err === "chain" && after !== undefined && sent[after]!.queued.deferred === true)
    ) {
      // Its row was held (or the one it was built on was): written again once it is let go.
      queued.deferred = true;
      deferred.add(queued);
    } else {
      queued.failed = true;
      outcomes[index] = outcomeOf(queued, result);
    }
  });
  return later.take(order, deferred, outcomes);
}

/**
 * Adds `queued`'s element to the batch, linked to its predecessor's if that is in the batch too;
 * or answers why it cannot go: its predecessor failed (in an earlier batch, or just before it), or
 * the commit cannot be written as an element.
 */
function addElement(
  queued: QueuedCommit,
  elements: Element[],
  position: Map<QueuedCommit, number>,
): Error | undefined {
  const { builtOn, commit } = queued;
  if (builtOn?.failed === true) return chainBroken(commit);
  let element: Element;
  try {
    element = toElement(commit);
  } catch (error) {
    return error as Error;
  }
  const before = builtOn === undefined ? undefined : position.get(builtOn);
  if (before !== undefined) element.a = before;
  position.set(queued, elements.length);
  elements.push(element);
  return undefined;
}

/**
 * Writes a batch's elements (after waiting for the row of instance `waitFor`, if given) and
 * answers one result each: read back by the batch's token when the connection broke meanwhile.
 */
async function writeElements(
  pool: Pool,
  notices: { channel: string; origin: string },
  answered: () => void,
  elements: Element[],
  waitFor?: number,
): Promise<ElementResult[]> {
  const plainCount = markPlainCommits(elements);
  let results: ElementResult[];
  try {
    results = await writeBatch(pool, notices, elements, plainCount, waitFor);
  } catch (error) {
    if (!(error instanceof BatchFateUnknown)) throw error;
    results = await fateOf(pool, error, elements);
  }
  // The batch's own answer, or the answer read back under its token: either way, the database's.
  answered();
  if (results.length !== elements.length) {
    throw new BackstateError(
      "store-error",
      "the commit function answered the wrong number of results",
    );
  }
  return results;
}

/** What one element's result tells its caller. */
function outcomeOf(queued: QueuedCommit, result: ElementResult): Outcome<CommitResult> {
  return result.ok
    ? { ok: true, value: { instanceId: result.id, sequence: result.seq } }
    : { ok: false, error: failureError(queued.commit, result) };
}

/** A commit finished after its batch, and how to tell its caller. */
type Member = {
  queued: QueuedCommit;
  resolve: (value: CommitResult) => void;
  reject: (error: Error) => void;
};

/**
 * One node's commits whose instance row another transaction held when their batch ran. Each
 * instance's are written again in a batch of their own that first waits for the row (and then
 * holds it), so they land on the row as its holder left it: written if nothing changed it, else
 * refused as any commit on a stale record is. One instance's such batches go one at a time, in
 * the order they came (a commit built on one of them is finished after it: the same instance's);
 * different instances' go side by side, so a row held long holds up only its own commits. Each
 * batch takes a pooled connection for as long as it waits (up to LOCKED_ROW_WAIT_MS): `waits`
 * bounds how many do at once, leaving the rest of the pool to the ordinary batches and reads.
 * Waiting holds no other row, so it cannot be part of a deadlock.
 */
class LockedRows {
  /** Each instance's last queued batch, until it has finished. */
  readonly #tails = new Map<string, Promise<void>>();

  constructor(
    private readonly pool: Pool,
    private readonly notices: { channel: string; origin: string },
    private readonly answered: () => void,
    private readonly waits: ConcurrencyLimit,
  ) {}

  /**
   * Queues the batch's `deferred` commits (taken in `order`, one run per instance) and gives each
   * the outcome "later"; answers `outcomes`.
   */
  take(
    order: ReadonlyArray<{ queued: QueuedCommit; index: number }>,
    deferred: ReadonlySet<QueuedCommit>,
    outcomes: Outcome<CommitResult>[],
  ): Outcome<CommitResult>[] {
    let run: Member[] = [];
    let instance: InstanceKey | undefined;
    for (const { queued, index } of order) {
      if (!deferred.has(queued)) continue;
      if (instance !== undefined && compareKeys(instance, queued.commit.instance) !== 0) {
        this.#queue(run);
        run = [];
      }
      instance = queued.commit.instance;
      const settles = new Promise<CommitResult>((resolve, reject) =>
        run.push({ queued, resolve, reject }),
      );
      outcomes[index] = { ok: "later", settles };
    }
    if (run.length > 0) this.#queue(run);
    return outcomes;
  }

  #queue(run: Member[]): void {
    const instance = instanceText(run[0]!.queued.commit.instance);
    // A place among the waits is taken only once the instance's earlier batch is done: a batch
    // queued behind its own instance's never holds one that another instance could use.
    const tail = (this.#tails.get(instance) ?? Promise.resolve()).then(() =>
      this.waits.run(() => this.#finish(run)),
    );
    this.#tails.set(instance, tail);
    void tail.then(() => {
      if (this.#tails.get(instance) === tail) this.#tails.delete(instance);
    });
  }

  /** Writes one instance's deferred commits, settling every one of them; never throws. */
  async #finish(run: Member[]): Promise<void> {
    const settled = new Set<Member>();
    const settle = (member: Member, outcome: Outcome<CommitResult>) => {
      // Its fate first: a successor cut into a batch from now on reads it there.
      member.queued.deferred = false;
      if (outcome.ok === true) member.resolve(outcome.value);
      else if (outcome.ok === false) {
        member.queued.failed = true;
        member.reject(outcome.error);
      }
      settled.add(member);
    };
    try {
      const elements: Element[] = [];
      const sent: Member[] = [];
      const position = new Map<QueuedCommit, number>();
      for (const member of run) {
        const refused = addElement(member.queued, elements, position);
        if (refused !== undefined) settle(member, { ok: false, error: refused });
        else sent.push(member);
      }
      if (elements.length === 0) return;
      const results = await writeElements(
        this.pool,
        this.notices,
        this.answered,
        elements,
        elements[0]!.id,
      );
      sent.forEach((member, i) => settle(member, outcomeOf(member.queued, results[i]!)));
    } catch (cause) {
      const error =
        cause instanceof DatabaseError && cause.code === "55P03"
          ? new BackstateError(
              "store-error",
              `instance ${run[0]!.queued.commit.instance.instanceName}: another transaction held its row for more than ${LOCKED_ROW_WAIT_MS} ms`,
              { cause },
            )
          : new BackstateError("store-error", "the group commit transaction failed", { cause });
      for (const member of run) {
        if (!settled.has(member)) settle(member, { ok: false, error });
      }
    }
  }
}

/** The connection broke after the batch statement was sent: it may have committed or not. */
class BatchFateUnknown extends Error {
  constructor(
    readonly token: string,
    readonly reason: Error,
  ) {
    super(`the connection broke while the batch was committing: ${reason.message}`, {
      cause: reason,
    });
  }
}

/** Runs the batch statement on a pooled connection: one round trip, one transaction. */
async function writeBatch(
  pool: Pool,
  notices: { channel: string; origin: string },
  elements: readonly Element[],
  plainCount: number,
  waitFor?: number,
): Promise<ElementResult[]> {
  const client = await checkOut(pool);
  let broken: Error | undefined;
  let sent = false;
  // The batch's answer is kept under this token, for reading back should it be lost (fateOf).
  const token = randomUUID();
  try {
    if (!defined.has(client)) {
      await client.query(DEFINE_COMMIT_BATCH);
      defined.add(client);
    }
    sent = true;
    const statement = {
      name: "bs_commit_batch_v7",
      text: COMMIT_BATCH,
      values: [
        JSON.stringify(elements),
        plainCount,
        notices.channel,
        originPrefix(notices.origin),
        token,
        // The instance whose row the batch waits for first (finishing locked commits), if any.
        waitFor ?? null,
      ],
      // A batch that takes this long is given up, as if its connection broke: fenced, it either
      // has committed, and its answer is read back, or never will (fateOf).
      query_timeout: BATCH_TIMEOUT_MS,
    };
    const answer = await client.query<{ results: ElementResult[] }>(statement);
    return answer.rows[0]?.results ?? [];
  } catch (error) {
    // An error PostgreSQL reported leaves the connection usable (the statement's transaction is
    // over, nothing of it written); any other (the connection broke, or timed out), or one that
    // ends the session (its backend terminated), means it must not go back to the pool, and
    // leaves unknown whether the batch committed.
    if (error instanceof DatabaseError && !endsSession(error)) throw error;
    broken = error instanceof Error ? error : new Error(String(error));
    throw sent ? new BatchFateUnknown(token, broken) : broken;
  } finally {
    client.release(broken);
  }
}

/**
 * The results of a batch whose answer was lost, settled by its token (ambiguous-batch.ts): its
 * own answer if it committed, else every commit failed (then it never will commit). Throws the
 * original failure when that cannot be learnt (then, as before, every commit of it fails).
 */
async function fateOf(
  pool: Pool,
  unknown: BatchFateUnknown,
  elements: readonly Element[],
): Promise<ElementResult[]> {
  let answer: ElementResult[] | undefined;
  try {
    answer = await settleLostBatch<ElementResult[]>(pool, unknown.token);
  } catch {
    throw unknown.reason;
  }
  return answer ?? elements.map(() => ({ ok: false, err: "other", msg: unknown.message }));
}

/**
 * Marks the plain event commits, which the function writes together in one statement: events
 * that deliver, cancel and arm no timer, of an instance no other commit of the batch touches (so
 * none is built on another, and one statement never writes a row twice). Answers how many are.
 */
function markPlainCommits(elements: Element[]): number {
  const count = new Map<string, number>();
  const instanceOf = (element: Element) => `${element.o}\0${element.m}\0${element.n}`;
  for (const element of elements) {
    const instance = instanceOf(element);
    count.set(instance, (count.get(instance) ?? 0) + 1);
  }
  let plainCount = 0;
  for (const element of elements) {
    const plain =
      element.k === "e" &&
      element.a === undefined &&
      element.dt === undefined &&
      element.dk === undefined &&
      element.rk === undefined &&
      element.uk === undefined &&
      element.t === undefined &&
      count.get(instanceOf(element)) === 1;
    if (plain) {
      element.f = 1;
      plainCount++;
    }
  }
  return plainCount;
}

function toElement(commit: TransitionCommit): Element {
  const key = commit.instance;
  if (commit.kind === "create" && commit.expectedSequence !== 0) {
    throw new TypeError("a create commit expects sequence 0");
  }
  if (commit.kind === "event" && commit.instanceId === undefined) {
    throw new TypeError("an event commit needs instanceId");
  }
  if (commit.kind === "event" && commit.expectedPendingServices === undefined) {
    throw new TypeError("an event commit needs expectedPendingServices");
  }
  const element: Element = {
    k: commit.kind === "create" ? "c" : "e",
    o: key.orgId,
    m: key.machineName,
    n: key.instanceName,
    v: commit.machineVersionId,
    es: commit.expectedSequence,
    s: commit.snapshot,
    p: JSON.stringify(commit.pendingServices),
    e: commit.transition.event,
    st: commit.transition.state,
    at: commit.at,
    // Sent only if the commit is written, which makes its sequence expectedSequence + 1.
    np: commitChange(commit, commit.expectedSequence + 1),
  };
  if (commit.kind === "event") {
    element.id = commit.instanceId;
    element.ep = JSON.stringify(commit.expectedPendingServices);
  }
  if (commit.deliveredTimerId !== undefined) element.dt = commit.deliveredTimerId;
  if (commit.deliveredTimerKey !== undefined) element.dk = commit.deliveredTimerKey;
  if (commit.requiresKeyId !== undefined) element.kid = commit.requiresKeyId;
  if (commit.timersToCancel.length > 0) element.rk = [...new Set(commit.timersToCancel)];
  if (commit.timersToDetach.length > 0) element.uk = [...new Set(commit.timersToDetach)];
  if (commit.timersToArm.length > 0) {
    element.t = attachedLastPerKey(commit.timersToArm).map((timer) =>
      timer.detached === true
        ? { k: timer.key, d: timer.dueAt, e: timer.event, x: 1 }
        : { k: timer.key, d: timer.dueAt, e: timer.event },
    );
  }
  return element;
}

function failureError(commit: TransitionCommit, failure: CommitFailure): Error {
  const key = commit.instance;
  switch (failure.err) {
    case "conflict":
      return new ConflictError(
        `instance ${key.instanceName} is no longer running at sequence ${commit.expectedSequence} with the pending services expected`,
      );
    case "chain":
      return chainBroken(commit);
    case "exists":
      return new AlreadyExistsError(`instance ${key.instanceName} already exists`);
    case "no-version":
      return new NotFoundError(
        `machine ${key.machineName} has no version ${commit.machineVersionId}`,
      );
    case "timer":
      // The timer this commit delivers was cancelled after it was claimed:
      // delivering it now would be wrong, so the commit fails and a timer fires at most once.
      return new ConflictError(
        `timer ${commit.deliveredTimerId ?? commit.deliveredTimerKey} was cancelled or already delivered`,
      );
    case "key":
      return new SigningKeyGoneError(commit.requiresKeyId ?? "(none)");
    case "locked":
      // Only a batch that did not wait for the row is answered so, and such an answer is
      // written again (LockedRows), not reported: this cannot be told to a caller.
      return new BackstateError("store-error", `instance ${key.instanceName}: its row was held`);
    case "race":
      // Two writers crossed and PostgreSQL picked this one to give way: what a conflict says.
      return new ConflictError(`the commit lost a race with another writer: ${failure.msg ?? ""}`);
    default:
      return new BackstateError("store-error", `storage failed: ${failure.msg ?? failure.err}`, {
        cause: failure,
      });
  }
}

function chainBroken(commit: TransitionCommit): ConflictError {
  return new ConflictError(
    `instance ${commit.instance.instanceName}: the commit this one was built on failed`,
  );
}

/**
 * The timers to arm, each detached but the last of its key that is not: arming them in turn
 * would leave them so (see TimerToArm), and the function arms a commit's timers in one statement.
 */
function attachedLastPerKey(timers: readonly TimerToArm[]): TimerToArm[] {
  const last = new Map<string, TimerToArm>();
  for (const timer of timers) if (timer.detached !== true) last.set(timer.key, timer);
  return timers.map((timer) =>
    timer.detached === true || last.get(timer.key) === timer ? timer : { ...timer, detached: true },
  );
}

/** An instance key as one map key (NUL cannot occur in a name). */
export function instanceText(key: InstanceKey): string {
  return `${key.orgId}\0${key.machineName}\0${key.instanceName}`;
}

/** Orders instance keys the same way on every node: org, then machine, then instance name. */
function compareKeys(a: InstanceKey, b: InstanceKey): number {
  return (
    compareText(a.orgId, b.orgId) ||
    compareText(a.machineName, b.machineName) ||
    compareText(a.instanceName, b.instanceName)
  );
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
