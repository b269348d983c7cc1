// The storage port: everything the engine and (later) the HTTP layer persist, in domain terms.
// Adapters (sqlite/, later postgres/) implement it; nothing else imports a database driver.
// Every method that names an org, machine or instance is scoped by the org id it is given.

/** Milliseconds since the Unix epoch. */
export type EpochMs = number;

export type OrgRecord = { id: string; name: string; createdAt: EpochMs };

export type KeyRecord = {
  id: string; // sbk_…
  orgId: string;
  name: string;
  secret: string; // sbsec_…
  scopes: string[];
  createdAt: EpochMs;
};

export type MachineRecord = {
  orgId: string;
  name: string;
  currentVersionId: string | undefined;
  createdAt: EpochMs;
};

export type MachineVersionRecord = {
  id: string; // ver_…
  orgId: string;
  machineName: string;
  /** The bundle: one ES module, UTF-8 source text (already gunzipped). */
  code: string;
  /** Hex SHA-256 of `code`. */
  hash: string;
  clientInfo: string | undefined;
  createdAt: EpochMs;
};

export type InstanceStatus = "running" | "paused";

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

/** A delayed event: fires at `dueAt` unless cancelled; `key` is the send id, unique per instance. */
export type TimerToArm = { key: string; dueAt: EpochMs; event: string };

export type TimerRecord = TimerToArm & {
  id: number;
  instanceId: number;
  instance: InstanceKey;
  /** Delivery attempts that failed so far. */
  attempts: number;
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
  snapshot: string;
  pendingServices: string[];
  transition: { event: string; state: string };
  timersToArm: TimerToArm[];
  /** Send ids of timers this transition cancelled. */
  timersToCancel: string[];
  /**
   * The timer whose delivery this transition is: deleted in the same transaction. The commit
   * fails with ConflictError when that timer no longer exists (cancelled after it was claimed).
   */
  deliveredTimerId?: number;
  at: EpochMs;
};

export type CommitResult = { instanceId: number; sequence: number };

export interface Store {
  /** Applies pending migrations; refuses (code `store-newer-than-server`) a newer database. */
  migrate(): Promise<void>;
  close(): Promise<void>;

  createOrg(org: OrgRecord): Promise<void>;
  getOrg(orgId: string): Promise<OrgRecord | undefined>;

  createKey(key: KeyRecord): Promise<void>;
  getKey(keyId: string): Promise<KeyRecord | undefined>;
  deleteKey(orgId: string, keyId: string): Promise<boolean>;

  /** Throws AlreadyExistsError when the org already has a machine of that name. */
  createMachine(machine: { orgId: string; name: string; createdAt: EpochMs }): Promise<void>;
  getMachine(orgId: string, machineName: string): Promise<MachineRecord | undefined>;

  /** Stores a version; with `makeCurrent`, also makes it the machine's current version. */
  createMachineVersion(version: MachineVersionRecord, makeCurrent: boolean): Promise<void>;
  getMachineVersion(
    orgId: string,
    machineName: string,
    versionId: string,
  ): Promise<MachineVersionRecord | undefined>;

  loadInstance(key: InstanceKey): Promise<InstanceRecord | undefined>;
  /**
   * Commits one transition. Commits from different instances that arrive together share one
   * database transaction (group commit); each succeeds or fails on its own. Resolves only after
   * the data is durable. Throws AlreadyExistsError (create of an existing name) or ConflictError
   * (the instance's sequence is no longer `expectedSequence`).
   */
  commitTransition(commit: TransitionCommit): Promise<CommitResult>;
  setInstanceStatus(key: InstanceKey, status: InstanceStatus): Promise<boolean>;
  /**
   * Records which services are pending without a transition (used when services are cut off).
   * Throws NotFoundError when no instance has that id.
   */
  setPendingServices(instanceId: number, pendingServices: string[]): Promise<void>;
  listTransitions(
    key: InstanceKey,
    page: { afterSequence?: number; limit: number },
  ): Promise<TransitionRecord[]>;

  /**
   * The earliest due time of any unclaimed timer, or undefined when there is none. A leased timer
   * counts from when its lease lapses (the later of its due time and its lease end), so a timer
   * whose deliverer died is picked up again.
   */
  nextTimerDue(): Promise<EpochMs | undefined>;
  /**
   * Claims up to `limit` timers due at or before `now` whose claim (if any) has lapsed, leasing
   * each until `now + leaseMs` so no other claimer takes it meanwhile.
   */
  claimDueTimers(now: EpochMs, limit: number, leaseMs: number): Promise<TimerRecord[]>;
  /** A delivery failed: count it and retry at `retryAt`, or drop the timer when `drop`. */
  recordTimerFailure(timerId: number, retryAt: EpochMs, drop: boolean): Promise<void>;
}
