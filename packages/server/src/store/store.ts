// The storage port: everything the engine and (later) the HTTP layer persist, in domain terms.
// Adapters (sqlite/, later postgres/) implement it; nothing else imports a database driver.
// Every method that names an org, machine or instance is scoped by the org id it is given.

/** Milliseconds since the Unix epoch. */
export type EpochMs = number;

export type OrgRecord = { id: string; name: string; createdAt: EpochMs };

/** A person (or the bootstrap admin) who administers orgs through admin session tokens. */
export type UserRecord = { id: string; name: string; createdAt: EpochMs };

export type OrgRole = "admin" | "write" | "read";

export type OrgMembership = { org: OrgRecord; role: OrgRole };

/** A server-minted admin session: tokens carry `kid` = `id` and are signed with `secret`. */
export type AdminSessionRecord = {
  id: string; // ses_…
  userId: string;
  secret: string;
  createdAt: EpochMs;
};

export type KeyRecord = {
  id: string; // sbk_…
  orgId: string;
  name: string;
  secret: string; // sbsec_…
  /** Read-only: a record's scopes are kept by what was worked out from them (resolve-principal). */
  scopes: readonly string[];
  createdAt: EpochMs;
};

/** A key as listed: everything but the secret. */
export type KeyInfo = Omit<KeyRecord, "secret">;

export type MachineRecord = {
  orgId: string;
  name: string;
  currentVersionId: string | undefined;
  /** Index names declared at creation (queried by a later feature). */
  indexes: string[];
  createdAt: EpochMs;
};

/** A version without its code: what listings and instance reads show. */
export type MachineVersionInfo = { id: string; clientInfo: string | undefined; createdAt: EpochMs };

export type MachineSummary = MachineRecord & { currentVersion: MachineVersionInfo | undefined };

export type MachineVersionRecord = {
  id: string; // ver_…
  orgId: string;
  machineName: string;
  /** The bundle: one ES module, UTF-8 source text (already gunzipped). */
  code: string;
  /** Hex SHA-256 of `code`. */
  hash: string;
  clientInfo: string | undefined;
  /** Index name -> JSONPath into the instance's context, for the machine's declared indexes. */
  indexSelectors: Record<string, string> | undefined;
  createdAt: EpochMs;
};

export type InstanceStatus = "running" | "paused";

/**
 * Whether a new version becomes its machine's current one: always, never, or only when the
 * machine has none yet at the moment the version is stored ("if-none", a finalize that leaves
 * makeCurrent out). The last is decided inside the version's transaction: read before the slow
 * bundle check, it would override a version made current meanwhile.
 */
export type MakeCurrent = boolean | "if-none";

/**
 * Uploaded code waiting for its finalize step (the upload URL and the finalize are two requests,
 * possibly to two nodes). `id` is the machine version id the finalize will create.
 */
export type CodeUploadRecord = {
  orgId: string;
  machineName: string;
  id: string;
  code: string;
  createdAt: EpochMs;
};

/** Identifies one instance within its org. */
export type InstanceKey = { orgId: string; machineName: string; instanceName: string };

export type InstanceRecord = InstanceKey & {
  /** Store-assigned id, unique across orgs; timers and history refer to it. */
  id: number;
  machineVersionId: string;
  /** The persisted machine snapshot as JSON text (opaque to the store). */
  snapshot: string;
  status: InstanceStatus;
  /** Number of committed transitions so far; the optimistic single-writer check compares it. */
  sequence: number;
  /** Services started by a committed transition whose result has not yet been committed. */
  pendingServices: string[];
  createdAt: EpochMs;
  updatedAt: EpochMs;
};

export type InstanceSummary = {
  name: string;
  status: InstanceStatus;
  machineVersion: MachineVersionInfo;
  createdAt: EpochMs;
};

/** Keyset paging: rows strictly after `after` in the listing's order, at most `limit` of them. */
export type Page<After = string> = { after?: After; limit: number };

/** Versions are listed oldest first; the position is the last row's (createdAt, id). */
export type VersionPosition = { createdAt: EpochMs; id: string };

export type DeleteMachineResult = "deleted" | "not-found" | "has-instances";

/**
 * A delayed event: fires at `dueAt` unless cancelled. `key` is its send id; several timers of an
 * instance may share one, as XState keeps every delayed event it schedules. A cancel of the key
 * reaches only the one armed last, unless that one is `detached`: still armed, out of a cancel's
 * reach (see TransitionCommit.timersToDetach).
 */
export type TimerToArm = { key: string; dueAt: EpochMs; event: string; detached?: true };

export type TimerRecord = TimerToArm & {
  id: number;
  instanceId: number;
  instance: InstanceKey;
  /** Delivery attempts that failed so far. */
  attempts: number;
  /**
   * The end of the lease the claim that returned this record holds. A claimer whose delivery
   * outlived its lease may find the timer claimed again by another: what it then records of its
   * failure must change nothing (see Store.recordTimerFailure).
   */
  claimedUntil: EpochMs;
};

/** Which history rows to list (see Store.listTransitions). */
export type TransitionPage = {
  afterSequence?: number;
  limit: number;
  newestFirst?: boolean;
  maxBytes?: number;
};

/** One history row: the event that was processed and the state it led to. */
export type TransitionRecord = {
  sequence: number;
  /** Event JSON text. */
  event: string;
  /** State value JSON text. */
  state: string;
  createdAt: EpochMs;
};

/** Everything one transition changes, committed atomically (or not at all). */
export type TransitionCommit = {
  /** For the first transition (creation) the instance row is inserted. */
  kind: "create" | "event";
  instance: InstanceKey;
  /** Required for kind "event": the id from `loadInstance`. */
  instanceId?: number;
  machineVersionId: string;
  /** The sequence this commit expects to find (0 for create); it writes `expectedSequence + 1`. */
  expectedSequence: number;
  /**
   * Required for kind "event": the pending services of the record the step was computed on. With
   * the sequence, the id and the running status, the commit finds the row exactly as that record
   * was: every write to an instance row either moves the sequence (a commit), makes a new id
   * (delete, then create), or changes the status or the pending services.
   */
  expectedPendingServices?: string[];
  snapshot: string;
  pendingServices: string[];
  transition: { event: string; state: string };
  /**
   * Applied after the cancels and detaches, in order. Arming a timer that is not detached first
   * detaches the key's timer a cancel would reach, if any: that one stays armed, and the new one
   * is now the one a cancel reaches (as XState's scheduler keeps only the last id it scheduled).
   */
  timersToArm: TimerToArm[];
  /** Send ids this transition cancelled: each deletes the key's timer a cancel reaches, if any. */
  timersToCancel: string[];
  /**
   * Send ids whose timer a cancel would reach stays armed but out of any cancel's reach: the
   * machine armed another under the key, then cancelled that one, in this same step (or XState 5
   * delivered a timer of the key, which makes it forget the id).
   */
  timersToDetach: string[];
  /**
   * The timer whose delivery this transition is: deleted in the same transaction. The commit
   * fails with ConflictError when that timer no longer exists (cancelled after it was claimed).
   */
  deliveredTimerId?: number;
  /**
   * The same by key, for a timer whose id the committer does not know: the backstop of an event
   * the machine sent itself (transition-commit.ts), which its own commit delivers. So a self-sent
   * event is written once, by its own commit or by its backstop's, whichever comes first.
   */
  deliveredTimerKey?: string;
  /**
   * The API key (of the instance's org) the event was sent with, when the caller's key was
   * verified from memory rather than read from the store: the commit is written only if that key
   * still exists, and otherwise fails with SigningKeyGoneError, writing nothing. This is what lets
   * a node skip reading the key on every request while a deleted key still fails at once.
   */
  requiresKeyId?: string;
  at: EpochMs;
};

export type CommitResult = { instanceId: number; sequence: number };

export interface Store extends ProviderStore {
  /** Applies pending migrations; refuses (code `store-newer-than-server`) a newer database. */
  migrate(): Promise<void>;
  close(): Promise<void>;

  /** Resolves once the database has answered a trivial query (a health check); else store-error. */
  ping(): Promise<void>;

  /**
   * The value stored under `name`, storing `value` first when there is none. Every node of a
   * cluster therefore agrees on the first value written (server secrets, bootstrap ids).
   */
  ensureSetting(name: string, value: string): Promise<string>;

  createOrg(org: OrgRecord): Promise<void>;
  getOrg(orgId: string): Promise<OrgRecord | undefined>;

  createUser(user: UserRecord): Promise<void>;
  getUser(userId: string): Promise<UserRecord | undefined>;
  /** Adds (or changes the role of) a member. Throws NotFoundError for a missing org or user. */
  setOrgMember(orgId: string, userId: string, role: OrgRole, at: EpochMs): Promise<void>;
  getOrgRole(orgId: string, userId: string): Promise<OrgRole | undefined>;
  /** The user's orgs, ordered by org id, after `page.after` (an org id). */
  listOrgsOfUser(userId: string, page: Page): Promise<OrgMembership[]>;

  /** Throws NotFoundError for a missing user. */
  createAdminSession(session: AdminSessionRecord): Promise<void>;
  getAdminSession(sessionId: string): Promise<AdminSessionRecord | undefined>;
  deleteAdminSession(sessionId: string): Promise<boolean>;

  createKey(key: KeyRecord): Promise<void>;
  getKey(keyId: string): Promise<KeyRecord | undefined>;
  deleteKey(orgId: string, keyId: string): Promise<boolean>;
  /** The org's keys without secrets, ordered by id, after `page.after` (a key id). */
  listKeys(orgId: string, page: Page): Promise<KeyInfo[]>;

  /** Throws AlreadyExistsError when the org already has a machine of that name. */
  createMachine(machine: {
    orgId: string;
    name: string;
    indexes?: string[];
    createdAt: EpochMs;
  }): Promise<void>;
  getMachine(orgId: string, machineName: string): Promise<MachineRecord | undefined>;
  /** The org's machines with their current version, ordered by name, after `page.after`. */
  listMachines(orgId: string, page: Page): Promise<MachineSummary[]>;
  /**
   * Deletes a machine with its versions and pending code uploads, in one transaction; refuses
   * (`has-instances`, changing nothing) while any instance of it exists.
   */
  deleteMachine(orgId: string, machineName: string): Promise<DeleteMachineResult>;

  /**
   * Stores a version; with `makeCurrent`, also makes it the machine's current version (see
   * MakeCurrent). The code upload with the version's id, if any, is dropped in the same transaction.
   */
  createMachineVersion(version: MachineVersionRecord, makeCurrent: MakeCurrent): Promise<void>;
  getMachineVersion(
    orgId: string,
    machineName: string,
    versionId: string,
  ): Promise<MachineVersionRecord | undefined>;
  getMachineVersionInfo(
    orgId: string,
    machineName: string,
    versionId: string,
  ): Promise<MachineVersionInfo | undefined>;
  /** A machine's versions, oldest first, after `page.after`. */
  listMachineVersions(
    orgId: string,
    machineName: string,
    page: Page<VersionPosition>,
  ): Promise<MachineVersionInfo[]>;

  /**
   * Keeps uploaded code until its finalize. Single use: throws AlreadyExistsError when an upload
   * for that id exists (or existed and became a version). Throws NotFoundError for a missing machine.
   */
  putCodeUpload(upload: CodeUploadRecord): Promise<void>;
  getCodeUpload(
    orgId: string,
    machineName: string,
    id: string,
  ): Promise<CodeUploadRecord | undefined>;
  /** Drops uploads made before `before` that were never finalized; returns how many. */
  purgeCodeUploads(before: EpochMs): Promise<number>;

  loadInstance(key: InstanceKey): Promise<InstanceRecord | undefined>;
  /**
   * Commits one transition. Commits from different instances that arrive together share one
   * database transaction (group commit); each succeeds or fails on its own. Resolves only after
   * the data is durable. Throws AlreadyExistsError (create of an existing name) or ConflictError
   * (an event commit whose instance is no longer running, or no longer at `expectedSequence` with
   * `expectedPendingServices`: a paused instance takes no transition, and a commit computed on a
   * stale record never lands).
   */
  commitTransition(commit: TransitionCommit): Promise<CommitResult>;
  /**
   * Pauses or resumes an instance; false when there is none. A store shared by several nodes
   * tells the others of a pause (PostgreSQL: a "paused" change notice), so they stop its services.
   */
  setInstanceStatus(key: InstanceKey, status: InstanceStatus): Promise<boolean>;
  /** A machine's instances, ordered by name, after `page.after` (an instance name). */
  listInstances(orgId: string, machineName: string, page: Page): Promise<InstanceSummary[]>;
  /**
   * Deletes an instance and its timers in one transaction, and queues its history for
   * purgeDeletedHistory: from then on no read, history page or new instance of the same name sees
   * anything of it (history rows name their instance by its never-reused row id). The history
   * itself is not deleted here, as a long one held the database for seconds.
   */
  deleteInstance(key: InstanceKey): Promise<boolean>;
  /**
   * Deletes up to `maxRows` history rows of deleted instances, in one short transaction, and
   * returns how many; a purge found to have nothing left leaves the queue. 0 means no queued purge
   * has rows left (on a shared database, also: the others are being purged by other nodes right
   * now, whose chunks this one skips rather than waits for). The engine's history purger calls it.
   */
  purgeDeletedHistory(maxRows: number): Promise<number>;
  /**
   * Records which services are pending without a transition (used when services are cut off),
   * if the row is still at `expected` (the sequence, pending services and status the change was
   * computed from): throws ConflictError when it is not, NotFoundError when no instance has that id.
   */
  setPendingServices(
    instanceId: number,
    pendingServices: string[],
    expected: { sequence: number; pendingServices: string[]; status: InstanceStatus },
  ): Promise<void>;
  /**
   * Oldest first by default; `newestFirst` lists from the latest (then `afterSequence` counts down).
   * With `maxBytes`, the page also stops after the row that brings its events and states (as
   * UTF-8) to that many bytes or more: a bound on what one page holds in memory, whatever the
   * machine stored, at the cost of one row past it.
   */
  listTransitions(key: InstanceKey, page: TransitionPage): Promise<TransitionRecord[]>;

  /**
   * The earliest due time of any unclaimed timer, or undefined when there is none. A leased timer
   * counts from when its lease lapses (the later of its due time and its lease end), so a timer
   * whose deliverer died is picked up again.
   */
  nextTimerDue(): Promise<EpochMs | undefined>;
  /**
   * Claims up to `limit` timers due at or before `now` whose claim (if any) has lapsed, leasing
   * each until `now + leaseMs` so no other claimer takes it meanwhile. Fair between orgs (see
   * fair-timer-claims.ts): an org's due timers are taken in turns with every other org's, and the
   * org with fewer timers under lease now goes first; within an org, earliest due first. The
   * result lists them earliest due first.
   */
  claimDueTimers(now: EpochMs, limit: number, leaseMs: number): Promise<TimerRecord[]>;
  /**
   * A delivery of a claimed timer failed: count it and retry at `retryAt`, or drop the timer when
   * `drop`. Only while the claim still holds it (its lease unchanged): a timer claimed again
   * since (the failed delivery outlived its lease) is the new claimer's to deliver, or to give up.
   */
  recordTimerFailure(
    timer: Pick<TimerRecord, "id" | "claimedUntil">,
    retryAt: EpochMs,
    drop: boolean,
  ): Promise<void>;
  /**
   * Running instances with pending services, by id after `afterId` (0: from the first), at most
   * `limit`: what a node that knows every service died with its predecessor (a claimed SQLite data
   * dir) owes error events.
   */
  listInstancesWithPendingServices(
    afterId: number,
    limit: number,
  ): Promise<Array<InstanceKey & { id: number }>>;
  /**
   * Deletes the instance's timers with these keys (every one under each key, detached or not),
   * outside any transition (none there: a no-op).
   */
  cancelTimers(instanceId: number, timerKeys: readonly string[]): Promise<void>;

  /**
   * Node `nodeId` runs (or is about to start) services of these instances until `until`: each
   * lease is taken or extended. Other nodes leave such instances' pending services alone while
   * it lasts (see servicesLeasedElsewhere).
   */
  leaseServices(nodeId: string, instances: readonly InstanceKey[], until: EpochMs): Promise<void>;
  /** Ends node `nodeId`'s leases on these instances, and removes every lease that ran out before `expiredBefore`. */
  endServiceLeases(
    nodeId: string,
    instances: readonly InstanceKey[],
    expiredBefore: EpochMs,
  ): Promise<void>;
  /** Whether a node other than `nodeId` holds a lease on the instance's services lasting past `now`. */
  servicesLeasedElsewhere(key: InstanceKey, nodeId: string, now: EpochMs): Promise<boolean>;
}

// ---- token exchange: identity providers and token providers ----------------------------------

/**
 * An identity provider an org trusts for token exchange, identified by its (aud, iss) pair (at
 * least one of them set). Its tokens are verified with `key` (a base64url HMAC secret, for the
 * HS* algorithms) or with the keys published at `jwksUrl` (the asymmetric ones): exactly one.
 */
export type IdentityProviderRecord = {
  orgId: string;
  aud: string | undefined;
  iss: string | undefined;
  /** JWS algorithm names (HS256, RS256, ES256, EdDSA, …) its tokens may be signed with. */
  algs: string[];
  key: string | undefined;
  jwksUrl: string | undefined;
  /** The mapping from its tokens' claims to the claims token providers see. */
  mapping: Record<string, unknown>;
  /**
   * The most its tokens can be exchanged for: the scopes of whoever configured it last. A token
   * provider whose key holds a scope beyond these refuses its tokens, so configuring an identity
   * provider (whose secret and mapping decide who a token speaks for) is worth no more than the
   * configurer's own scopes. Undefined for rows saved before this was recorded: such a provider
   * mints nothing until it is saved again (anonymous ones excepted: see anonymous.ts).
   */
  grantableScopes: readonly string[] | undefined;
  createdAt: EpochMs;
  updatedAt: EpochMs;
};

/** Which identity provider: its aud and/or iss, as configured. */
export type IdentityProviderId = { aud: string | undefined; iss: string | undefined };

/** Identity providers are listed by (aud, iss), an unset one sorting as "" (before any other). */
export type IdentityProviderPosition = { aud: string; iss: string };

/** Mints tokens signed with `keyId` (so holding its scopes) whose `act` is `mapping` applied. */
export type TokenProviderRecord = {
  orgId: string;
  service: string;
  keyId: string;
  mapping: Record<string, unknown>;
  createdAt: EpochMs;
  updatedAt: EpochMs;
};

/** The part of the port token exchange uses; every method is scoped by its org. */
export interface ProviderStore {
  /**
   * Creates the provider, or replaces the algs, key, jwksUrl and mapping of the one with the same
   * (aud, iss), keeping its createdAt. Throws NotFoundError for a missing org.
   */
  upsertIdentityProvider(idp: IdentityProviderRecord): Promise<void>;
  /** The org's identity providers ordered by (aud, iss), after `page.after`. */
  listIdentityProviders(
    orgId: string,
    page: Page<IdentityProviderPosition>,
  ): Promise<IdentityProviderRecord[]>;
  /**
   * The providers that accept a token with these audiences and issuer: each provider's aud, when
   * set, is one of `audiences`, and its iss, when set, is `issuer`. Those that set both come
   * first, then by (aud, iss).
   */
  findIdentityProviders(
    orgId: string,
    token: { audiences: readonly string[]; issuer: string | undefined },
  ): Promise<IdentityProviderRecord[]>;
  deleteIdentityProvider(orgId: string, id: IdentityProviderId): Promise<boolean>;

  /** Creates the provider or replaces its keyId and mapping. Throws NotFoundError for a missing org. */
  upsertTokenProvider(provider: TokenProviderRecord): Promise<void>;
  getTokenProvider(orgId: string, service: string): Promise<TokenProviderRecord | undefined>;
  /** The org's token providers ordered by service, after `page.after` (a service). */
  listTokenProviders(orgId: string, page: Page): Promise<TokenProviderRecord[]>;
  deleteTokenProvider(orgId: string, service: string): Promise<boolean>;
}
