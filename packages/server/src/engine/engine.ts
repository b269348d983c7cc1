// The engine: durable, linearizable machine instances. Every event to an instance goes through
// its mailbox (one writer per instance); every transition is committed before its effects run;
// requests wait for the instance to settle; delayed events are durable timers.
import {
  AlreadyExistsError,
  BackstateError,
  ConflictError,
  NotFoundError,
  RejectedByMachineAuthorizerError,
} from "../errors.js";
import type { MachineRuntime, VersionRef } from "../runtime/machine-runtime.js";
import type { InstanceKey, InstanceRecord, InstanceStatus, Store } from "../store/store.js";
import { ActivityTracker } from "./activity.js";
import { systemClock, type Clock } from "./clock.js";
import { randomIds, type IdGenerator } from "./ids.js";
import { parseEnvelope, stateOf, type InstanceState } from "./instance-state.js";
import { silentLogger, type Logger } from "./logger.js";
import { ExternalInbox } from "./external-inbox.js";
import { InstanceCache, unchanged } from "./instance-cache.js";
import { KeyedMailbox } from "./mailbox.js";
import { instanceRefOf, StepCommitter, versionOf, type Committed } from "./step-committer.js";
import { LostServices } from "./lost-services.js";
import { ChangesElsewhere } from "./changes-elsewhere.js";
import { ServiceLeases } from "./service-leases.js";
import { ServiceEventBacklog, type BacklogLimits } from "./service-event-backlog.js";
import { SandboxEventIntake } from "./sandbox-event-intake.js";
import { BatchDelivery } from "./batch-delivery.js";
import { TimerDelivery } from "./timer-delivery.js";
import {
  EXECUTED_STEP_LIMITS,
  ExecutedSteps,
  newSelfSendChain,
  takeFromChain,
  type SelfSendChain,
} from "./executed-steps.js";
import { MachineCatalog, type NewMachineVersion } from "./machine-catalog.js";
import { TimerPacing, type TimerPacingLimits } from "./timer-pacing.js";
import { selfEventBackstopKey } from "./transition-commit.js";
import { MAX_CONFLICT_RETRIES, pauseAfterLosses } from "./conflict-retries.js";
import {
  isStoreError,
  loggingRetries,
  RESULT_COMMIT_RETRY_DELAYS_MS,
  retryingStoreErrors,
} from "./result-commit-retries.js";
import { TimerScheduler } from "./timer-scheduler.js";
import { HistoryPurger } from "./history-purger.js";
import { nobodyWatches, type ReadAudience } from "./read-audience.js";
import { UpdateEmitter, type InstanceUpdate } from "./update-emitter.js";
import {
  checkAuthContext,
  checkExternalEvent,
  checkInitialContext,
  checkName,
} from "./validate.js";

export type EngineOptions = {
  store: Store;
  runtime: MachineRuntime;
  clock?: Clock;
  ids?: IdGenerator;
  logger?: Logger;
  /** How long a request waits for running services after the last external event. Default 90 s. */
  settleTimeoutMs?: number;
  /** Largest context, as UTF-8 JSON. Default 400,000 bytes. */
  maxContextBytes?: number;
  timerRetryDelayMs?: number;
  maxTimerAttempts?: number;
  timerLeaseMs?: number;
  /**
   * For how many instances the record of this node's last write is kept, so their next event
   * skips loading the row (a stale one costs a refused commit and a retry). Default 10,000;
   * 0 loads every time.
   */
  instanceCacheSize?: number;
  /**
   * How long this node's lease on an instance's running services lasts unrenewed (renewed every
   * third of it): after a node dies, the others wait this long before they count its services
   * lost. Default 30 s.
   */
  serviceLeaseMs?: number;
  /** This node's name in the service leases (see service-leases.ts). Default: random. */
  nodeId?: string;
  /**
   * How many events a machine may send itself in all, one after another or side by side, after
   * one event it was given; the rest are dropped. Without a bound, a machine that answers an event
   * by sending it to itself again would commit for ever and hold its instance. Default 1,000.
   * The events its custom actions send it through `self` (XState 5) count with them: one budget
   * for a chain of steps each caused by an event of either kind (see executed-steps.ts).
   */
  maxSelfEvents?: number;
  /**
   * How long the backstop of an event a machine sends itself waits before the timer scheduler
   * delivers it (see selfEventBackstopKey): the time a live node has to step it itself. Default
   * the service lease: another node's backstop is due only once that node counts as dead.
   */
  selfEventBackstopMs?: number;
  /**
   * How many events (and characters) running services, and actions through `self.send`, may have
   * waiting per instance.
   */
  serviceBacklog?: BacklogLimits;
  /** How fast an instance's own timers may drive it (see timer-pacing.ts). */
  timerPacing?: TimerPacingLimits;
  /**
   * The waits before each further try of a service result's commit after a store error (see
   * result-commit-retries.ts), and of an event the machine sent itself. Default 100, 400 and
   * 1,600 ms.
   */
  serviceResultRetryDelaysMs?: readonly number[];
};

export type { InstanceUpdate } from "./update-emitter.js";

/** What all records kept for the instances' next writes may hold: their snapshots, in characters. */
const MAX_CACHED_SNAPSHOT_CHARS = 64 * 1024 * 1024;

/**
 * The record a write builds on, and whether it was remembered (this node's last write of the
 * instance) rather than loaded: a remembered one may be stale until a write built on it lands.
 */
type WriteBase = { instance: InstanceRecord; remembered: boolean };

export type InstanceAddress = { orgId: string; machineName: string; instanceName: string };

export type AdministrativeState = {
  state: unknown;
  /** The whole context, private parts included. */
  context: unknown;
  tags: string[];
  done: boolean;
  status: InstanceStatus;
  machineVersionId: string;
  createdAt: number;
};

/**
 * What processSelfEvents may still step: what is left of `chain`'s budget, which the actions of
 * the steps it causes share when they send through `self` (absent for an outside event's step:
 * the chain it starts, see chainStartedBy); each charged to the instance's timer pacing when
 * `paced` (after a timer's delivery).
 */
type SelfEventBudget = { chain?: SelfSendChain | undefined; paced: boolean };

export class Engine {
  private readonly store: Store;
  private readonly runtime: MachineRuntime;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly mailbox = new KeyedMailbox();
  private readonly inbox = new ExternalInbox<Committed>(this.mailbox, (ref, letters) =>
    this.batches.deliverBatch(ref, letters),
  );
  private readonly activity: ActivityTracker;
  private readonly committer: StepCommitter;
  private readonly timers: TimerScheduler;
  private readonly historyPurger: HistoryPurger;
  private readonly lostServices: LostServices;
  private readonly leases: ServiceLeases;
  private readonly catalog: MachineCatalog;
  private readonly cache: InstanceCache;
  private readonly elsewhere: ChangesElsewhere;
  private readonly maxSelfEvents: number;
  /** The waits before each further try of a service result's writes (result-commit-retries.ts). */
  private readonly resultRetryDelaysMs: readonly number[];
  /** deliverLostServicesOfPredecessor's work, which close() waits for. */
  private recovery: Promise<void> = Promise.resolve();
  private readonly executedSteps: ExecutedSteps;
  private readonly sandboxEvents: SandboxEventIntake;
  private readonly batches: BatchDelivery;
  private readonly timerDelivery: TimerDelivery;
  private readonly timerPacing: TimerPacing;
  private closed = false;
  private readonly updates: UpdateEmitter;
  private audience: ReadAudience = nobodyWatches;

  constructor(options: EngineOptions) {
    const serviceBacklog = new ServiceEventBacklog(options.serviceBacklog);
    this.timerPacing = new TimerPacing(options.timerPacing);
    this.maxSelfEvents = options.maxSelfEvents ?? 1_000;
    if (!Number.isInteger(this.maxSelfEvents) || this.maxSelfEvents < 1) {
      throw new TypeError("maxSelfEvents must be a positive integer");
    }
    const retryDelays = options.serviceResultRetryDelaysMs ?? RESULT_COMMIT_RETRY_DELAYS_MS;
    if (!retryDelays.every((ms) => Number.isFinite(ms) && ms >= 0)) {
      throw new TypeError("serviceResultRetryDelaysMs must hold non-negative numbers");
    }
    this.resultRetryDelaysMs = retryDelays;
    // Also how long self-sent events' backstops wait, unless set: see selfEventBackstopMs.
    const serviceLeaseMs = options.serviceLeaseMs ?? 30_000;
    this.store = options.store;
    this.runtime = options.runtime;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    this.updates = new UpdateEmitter(this.logger);
    this.cache = new InstanceCache({
      maxEntries: options.instanceCacheSize ?? 10_000,
      maxSnapshotChars: MAX_CACHED_SNAPSHOT_CHARS,
    });
    this.catalog = new MachineCatalog({
      store: this.store,
      runtime: this.runtime,
      clock: this.clock,
      ids: options.ids ?? randomIds,
    });
    const settleTimeoutMs = options.settleTimeoutMs ?? 90_000;
    // A step's actions may send their instance events for as long as a request waits for it to
    // settle (an action's timer may fire later than that; its event is then dropped).
    this.executedSteps = new ExecutedSteps(() => this.clock.now(), {
      ...EXECUTED_STEP_LIMITS,
      keepMs: settleTimeoutMs,
    });
    this.activity = new ActivityTracker(
      this.clock,
      settleTimeoutMs,
      (ref, version, ids) => this.stopAtDeadline(ref, version, ids),
      (ref) => this.leases.idle(ref),
    );
    this.leases = new ServiceLeases({
      store: this.store,
      activity: this.activity,
      clock: this.clock,
      logger: this.logger,
      leaseMs: serviceLeaseMs,
      ...(options.nodeId !== undefined ? { nodeId: options.nodeId } : {}),
    });
    this.committer = new StepCommitter({
      store: this.store,
      runtime: this.runtime,
      activity: this.activity,
      clock: this.clock,
      logger: this.logger,
      maxContextBytes: options.maxContextBytes ?? 400_000,
      cache: this.cache,
      onTimersArmed: (dueAt) => this.timers.wake(dueAt),
      onCommitted: (instance, state, reads) =>
        this.updates.emit({ kind: "state", instance, state, ...(reads ? { reads } : {}) }),
      audience: (key, limit) => this.audience(key, limit),
      leaseServices: (key) => this.leases.hold(key),
      timersNotBefore: (key, now) => this.timerPacing.notBefore(instanceRefOf(key), now),
      selfEventBackstopMs: options.selfEventBackstopMs ?? serviceLeaseMs,
      resultRetryDelaysMs: retryDelays,
      executedSteps: this.executedSteps,
    });
    this.lostServices = new LostServices({
      store: this.store,
      runtime: this.runtime,
      activity: this.activity,
      committer: this.committer,
      cache: this.cache,
      logger: this.logger,
      leases: this.leases,
      selfEvents: (committed) => this.processSelfEvents(committed),
    });
    this.timers = new TimerScheduler({
      store: this.store,
      clock: this.clock,
      logger: this.logger,
      deliver: (timer) => this.timerDelivery.deliverTimer(timer),
      retryDelayMs: options.timerRetryDelayMs ?? 30_000,
      maxAttempts: options.maxTimerAttempts ?? 5,
      leaseMs: options.timerLeaseMs ?? 10_000,
    });
    this.elsewhere = new ChangesElsewhere({
      store: this.store,
      activity: this.activity,
      cache: this.cache,
      logger: this.logger,
    });
    this.historyPurger = new HistoryPurger({
      store: this.store,
      clock: this.clock,
      logger: this.logger,
    });
    this.sandboxEvents = new SandboxEventIntake({
      activity: this.activity,
      committer: this.committer,
      logger: this.logger,
      executedSteps: this.executedSteps,
      backlog: serviceBacklog,
      exclusive: (ref, task) => this.exclusive(ref, task),
      retryingRefusals: (key, work, load) => this.retryingRefusals(key, work, load),
      loadForResult: (key) => this.loadForResult(key),
      maxSelfEvents: this.maxSelfEvents,
      processSelfEvents: (committed, chain) =>
        this.processSelfEvents(committed, { chain, paced: false }),
    });
    this.batches = new BatchDelivery({
      store: this.store,
      cache: this.cache,
      committer: this.committer,
      lostServices: this.lostServices,
      retryingConflicts: (key, work) => this.retryingConflicts(key, work),
      prepareDelivery: (instance, lost) => this.prepareDelivery(instance, lost),
      processSelfEvents: (committed) => this.processSelfEvents(committed),
    });
    this.timerDelivery = new TimerDelivery({
      store: this.store,
      clock: this.clock,
      logger: this.logger,
      committer: this.committer,
      timerPacing: this.timerPacing,
      exclusive: (ref, task) => this.exclusive(ref, task),
      retryingConflicts: (key, work) => this.retryingConflicts(key, work),
      prepareDelivery: (instance) => this.prepareDelivery(instance),
      processSelfEvents: (committed) => this.processSelfEvents(committed, { paced: true }),
    });
    this.runtime.onServiceEvent((...event) => this.sandboxEvents.onServiceEvent(...event));
    this.runtime.onSelfEvent((...event) => this.sandboxEvents.onSelfEvent(...event));
    this.runtime.onSandboxLost(({ orgId, affinities }) => {
      for (const ref of affinities) if (ref.startsWith(`${orgId}/`)) this.activity.lost(ref);
    });
  }

  /**
   * Calls `listener` after every committed transition of any instance (and when one is deleted),
   * in commit order per instance. Returns the function that stops the calls.
   */
  onInstanceUpdate(listener: (update: InstanceUpdate) => void): () => void {
    return this.updates.add(listener);
  }

  /**
   * Names the readers watching each instance (the realtime hub does): each step of a watched
   * instance asks allowRead about them too, and its update carries the answers.
   */
  watchReaders(audience: ReadAudience): void {
    this.audience = audience;
  }

  /** The public State of a stored instance (what its last commit produced). */
  stateOf(instance: InstanceRecord): InstanceState {
    return stateOf(parseEnvelope(instance.snapshot).view, instance.updatedAt);
  }

  /** Whether the instance's allowRead lets `authContext` read it as stored; never waits for processing. */
  async canRead(instance: InstanceRecord, authContext: unknown): Promise<boolean> {
    const decision = await this.runtime.read(versionOf(instance, instance.machineVersionId), {
      instanceName: instance.instanceName,
      snapshot: parseEnvelope(instance.snapshot).machine,
      authContext: checkAuthContext(authContext),
    });
    // Only a literal true allows, as in the sandbox: its answer is machine code's to forge.
    return decision.allowed === true;
  }

  /** Another node committed transition `sequence` of the instance (see changes-elsewhere.ts). */
  changedElsewhere(key: InstanceKey, sequence: number): void {
    this.elsewhere.changedElsewhere(key, sequence);
  }

  /** The instance's row `instanceId` was deleted, by another node (see changes-elsewhere.ts). */
  deletedElsewhere(key: InstanceKey, instanceId: number | undefined): void {
    this.elsewhere.deletedElsewhere(key, instanceId);
  }

  /** Another node paused the instance at transition `sequence` (see changes-elsewhere.ts). */
  pausedElsewhere(key: InstanceKey, sequence: number, instanceId?: number): void {
    this.elsewhere.pausedElsewhere(key, sequence, instanceId);
  }

  /** Other nodes' changes may have gone unheard (see changes-elsewhere.ts). */
  missedChangesElsewhere(): void {
    this.elsewhere.missedChangesElsewhere();
  }

  /**
   * Starts firing durable timers and purging deleted instances' history (including what an
   * earlier run left of either).
   */
  start(): void {
    this.timers.start();
    this.historyPurger.start();
  }

  /**
   * Delivers, in the background, the error events of every service the store lists as pending:
   * for a node alone on its store (a claimed SQLite data dir), whose predecessor's services all
   * died with it. Without this, an instance that waited for its service's answer (no timer, no
   * client event coming) would wait in its invoking state for ever: lost services are otherwise
   * settled only before the instance's next event.
   */
  deliverLostServicesOfPredecessor(): void {
    this.recovery = this.settleAllLost().catch((err: unknown) =>
      this.logger.warn("could not deliver the error events of services lost in a restart", {
        error: String(err),
      }),
    );
  }

  private async settleAllLost(): Promise<void> {
    const PAGE = 100;
    for (let after = 0; !this.closed;) {
      const page = await this.store.listInstancesWithPendingServices(after, PAGE);
      for (const found of page) {
        if (this.closed) return;
        after = found.id;
        const { orgId, machineName, instanceName } = found;
        const key = { orgId, machineName, instanceName };
        const ref = instanceRefOf(key);
        await this.exclusive(ref, () =>
          this.retryingConflicts(key, async ({ instance }) => {
            // A paused instance gets them before its first event after the resume, as usual.
            if (instance.status === "paused") return;
            const lost = await this.lostServices.lostOf(instance);
            if (lost.length === 0) return;
            this.activity.touch(ref);
            await this.lostServices.settle(instance, lost);
          }),
        ).catch((err: unknown) =>
          // Deleted meanwhile, or its machine failed: its next event settles what is left.
          this.logger.warn("the error events of services lost in a restart were not delivered", {
            instance: ref,
            error: String(err),
          }),
        );
      }
      if (page.length < PAGE) return;
    }
  }

  /** Stops taking work, lets in-flight events finish, stops the timers and the history purge. */
  async close(): Promise<void> {
    this.closed = true;
    await this.recovery;
    await this.timers.stop();
    // Waits for one chunk at most: the rest of a purge stays queued for the next start.
    await this.historyPurger.stop();
    await this.mailbox.drain();
    await this.leases.close();
  }

  /**
   * Another node armed a timer due at `dueAt` (undefined: it may have, when is unknown): the
   * scheduler looks at the store now if that is sooner than its next look. Each timer still fires
   * once: the nodes' claims on it exclude each other.
   */
  wakeTimers(dueAt?: number): void {
    this.timers.wake(dueAt);
  }

  /** Resolves when no timer delivery is in progress (tests advance a manual clock, then wait). */
  async timersIdle(): Promise<void> {
    await this.timers.idle();
    await this.mailbox.drain();
  }

  createMachine(orgId: string, machineName: string, indexes?: string[]): Promise<void> {
    return this.catalog.createMachine(orgId, machineName, indexes);
  }

  /** Stores a bundle as a new version once a sandbox has loaded it and found its exports. */
  createMachineVersion(input: NewMachineVersion): Promise<string> {
    return this.catalog.createMachineVersion(input);
  }

  /** Creates an instance: allowWrite (initialization), the initial step, then waits to settle. */
  async createInstance(
    input: InstanceAddress & {
      context?: unknown;
      authContext: unknown;
      machineVersionId?: string;
    },
  ): Promise<InstanceState> {
    this.refuseWhenClosed();
    const key = this.keyOf(input);
    const context = checkInitialContext(input.context);
    const authContext = checkAuthContext(input.authContext);
    const versionId = await this.catalog.resolveVersion(key, input.machineVersionId);
    const ref = instanceRefOf(key);
    const committed = await this.exclusive(ref, async () => {
      // A cheap check first, so a duplicate name runs no machine code; the store's unique
      // constraint still decides races with other nodes.
      if (await this.store.loadInstance(key))
        throw new AlreadyExistsError(`instance ${key.instanceName} already exists`);
      const created = await this.committer.create(key, versionId, context, authContext);
      return this.processSelfEvents(created);
    });
    return this.settledState(ref, key, committed);
  }

  /**
   * Sends an event: allowWrite (event), one macrostep, then waits for the instance to settle.
   * With `requiresKeyId`, the event's commit is written only if that key of the org still exists
   * (it fails with SigningKeyGoneError otherwise); a resolved send has therefore seen the key.
   */
  async sendEvent(
    input: InstanceAddress & { event: unknown; authContext: unknown; requiresKeyId?: string },
  ): Promise<InstanceState> {
    this.refuseWhenClosed();
    const key = this.keyOf(input);
    const event = checkExternalEvent(input.event);
    const authContext = checkAuthContext(input.authContext);
    const ref = instanceRefOf(key);
    const committed = await this.inbox.post(ref, event, authContext, input.requiresKeyId);
    return this.settledState(ref, key, committed);
  }

  /** Reads an instance's state through its allowRead. Never waits for processing. */
  async readInstance(input: InstanceAddress & { authContext: unknown }): Promise<InstanceState> {
    return (await this.readInstanceRow(input)).state;
  }

  /**
   * readInstance, with the row the state was read from: an instance deleted and made again under
   * its name is another row (a larger id), which a realtime subscriber must not take for the one
   * it watched.
   */
  async readInstanceRow(
    input: InstanceAddress & { authContext: unknown },
  ): Promise<{ instanceId: number; state: InstanceState }> {
    const key = this.keyOf(input);
    const authContext = checkAuthContext(input.authContext);
    const instance = await this.load(key);
    const envelope = parseEnvelope(instance.snapshot);
    const decision = await this.runtime.read(versionOf(key, instance.machineVersionId), {
      instanceName: key.instanceName,
      snapshot: envelope.machine,
      authContext,
    });
    if (decision.allowed !== true) {
      throw new RejectedByMachineAuthorizerError(
        `the machine's authorizer refused: ${decision.reason ?? "denied"}`,
      );
    }
    return { instanceId: instance.id, state: stateOf(envelope.view, instance.updatedAt) };
  }

  async setInstanceStatus(
    input: InstanceAddress & { status: "running" | "paused" },
  ): Promise<void> {
    const key = this.keyOf(input);
    const ref = instanceRefOf(key);
    const found = await this.exclusive(ref, async () => {
      this.cache.forget(key);
      const found = await this.store.setInstanceStatus(key, input.status);
      // A paused instance takes no result: its services stop, as at the settle deadline, and
      // stay pending, so each one's error event comes before the first event after the resume.
      if (found && input.status === "paused") this.activity.stop(ref);
      return found;
    });
    if (!found) throw new NotFoundError(`instance ${key.instanceName} not found`);
  }

  /** Everything about an instance, for administrators: no authorizer runs. */
  async inspectInstance(input: InstanceAddress): Promise<AdministrativeState> {
    const instance = await this.load(this.keyOf(input));
    const envelope = parseEnvelope(instance.snapshot);
    const machine = envelope.machine as { context?: unknown } | null;
    return {
      state: envelope.view.value,
      context: machine?.context ?? {},
      tags: envelope.view.tags,
      done: envelope.view.done,
      status: instance.status,
      machineVersionId: instance.machineVersionId,
      createdAt: instance.createdAt,
    };
  }

  /**
   * Deletes an instance with its pending timers, after events already posted to it; its history
   * is invisible at once and purged in the background (history-purger.ts).
   */
  async deleteInstance(input: InstanceAddress): Promise<void> {
    const key = this.keyOf(input);
    const ref = instanceRefOf(key);
    const found = await this.exclusive(ref, async () => {
      this.cache.forget(key);
      const deleted = await this.store.deleteInstance(key);
      // Its running services stop with it (else they ran on to the deadline, and a new instance
      // of the same name waited for them and took them for its own).
      if (deleted) this.activity.stop(ref);
      return deleted;
    });
    // Its history was queued by the delete: removed from now on, a chunk at a time.
    if (found) this.historyPurger.wake();
    if (!found) throw new NotFoundError(`instance ${key.instanceName} not found`);
    this.updates.emit({ kind: "deleted", key });
  }

  /** Runs work in the instance's mailbox, after every external event posted before it. */
  private exclusive<T>(ref: string, task: () => Promise<T>): Promise<T> {
    this.inbox.close(ref);
    return this.mailbox.run(ref, task);
  }

  /**
   * What every delivery of an outside event (a client's or a timer's) starts with, inside the
   * instance's mailbox: the instance, unless paused; its settle deadline pushed back; and the
   * error events owed for services that were lost, delivered first.
   */
  private async prepareDelivery(
    instance: InstanceRecord,
    lost?: readonly string[],
  ): Promise<InstanceRecord> {
    if (instance.status === "paused") {
      throw new BackstateError("invalid-state", `instance ${instance.instanceName} is paused`);
    }
    this.activity.touch(instanceRefOf(instance));
    return this.lostServices.settle(instance, lost);
  }

  /**
   * Steps the events a committed step sent its machine itself, depth first, each on the record the
   * one before left (stepped again on a fresh read when another node wrote meanwhile); resolves
   * with the last commit. The event that sent them is written, so its caller is answered with
   * success (as after a settle timeout, api-contract §7.1), not told it failed and tempted to send
   * it again: a self-sent event that fails for a known reason (its step threw, its context was too
   * big, the instance was paused or deleted meanwhile) is logged and dropped, like an event whose
   * sender has gone, and the ones after it still go. A store error leaves unknown whether the
   * self-sent event was written, but not whether the event that sent it was: that one is, so it is
   * not reported either (a client told its event failed would send it again, and it would apply
   * twice); it is logged as maybe lost, and the ones after it still go, each on a fresh read. Only
   * an error that is not ours is reported. Past the budget of their chain (`budget.chain`, or the
   * one the step starts, with `maxSelfEvents`), the rest are dropped too. After a timer's delivery
   * (`budget.paced`), each one counts against the instance's timer pacing. Each step they cause
   * stays on the chain, so what its own actions send through `self` counts against the same
   * budget (executed-steps.ts): neither kind of send restarts it.
   */
  private async processSelfEvents(
    committed: Committed,
    budget: SelfEventBudget = { paced: false },
  ): Promise<Committed> {
    const { selfEvents } = committed.step;
    // Most steps send themselves nothing: no chain is looked up for them.
    if (selfEvents.length === 0) return committed;
    const chain = budget.chain ?? this.chainStartedBy(committed);
    let current = committed;
    // Each one's backstop (see selfEventBackstopKey) is named after the commit that sent it.
    const backstopOf = (index: number) => selfEventBackstopKey(committed.instance.sequence, index);
    for (const [index, event] of selfEvents.entries()) {
      const instance = instanceRefOf(current.instance);
      const backstopKey = backstopOf(index);
      const withinBudget = takeFromChain(chain, () =>
        this.logger.warn("the machine sent itself too many events; the rest were dropped", {
          instance,
          event: event.type,
          limit: this.maxSelfEvents,
        }),
      );
      if (!withinBudget) {
        // Dropped for good: their backstops must not deliver them later.
        const rest = selfEvents.map((_, i) => backstopOf(i)).slice(index);
        await this.cancelBackstops(committed.instance, rest);
        return current;
      }
      const { orgId, machineName, instanceName } = current.instance;
      if (budget.paced) this.timerPacing.charge(instance, 1, this.clock.now());
      let next: Committed;
      try {
        next = await this.retryingRefusals({ orgId, machineName, instanceName }, (base) =>
          this.committer.transition(base.instance, event, {
            kind: "self",
            backstopKey,
            chain,
          }),
        );
      } catch (err) {
        if (!(err instanceof BackstateError)) throw err;
        // Its backstop stays: if the event's commit did not land, the backstop delivers it.
        if (err.code === "store-error") {
          this.logger.warn("an event the machine sent itself may not have been applied", {
            instance,
            event: event.type,
            error: String(err),
          });
          continue;
        }
        this.logger.warn("an event the machine sent itself failed and was dropped", {
          instance,
          event: event.type,
          error: String(err),
        });
        await this.cancelBackstops(committed.instance, [backstopKey]);
        continue;
      }
      current = await this.processSelfEvents(next, { chain, paced: budget.paced });
    }
    return current;
  }

  /**
   * The chain an outside event's step starts: the one what its actions send through `self` counts
   * on (executed-steps.ts), so that the events it sends itself both ways share one budget. A step
   * not recorded there has no effects to run, and so sends nothing through `self`: a new chain.
   */
  private chainStartedBy(committed: Committed): SelfSendChain {
    const ref = instanceRefOf(committed.instance);
    const sender = this.executedSteps.sender(committed.step.stepId, ref, this.maxSelfEvents);
    return sender?.chain ?? newSelfSendChain(this.maxSelfEvents);
  }

  /** Cancels backstops of self-sent events that were dropped (a failure here is only logged). */
  private async cancelBackstops(instance: InstanceRecord, keys: string[]): Promise<void> {
    try {
      await this.store.cancelTimers(instance.id, keys);
    } catch (err) {
      this.logger.warn("a dropped self-sent event's backstop could not be cancelled", {
        instance: instanceRefOf(instance),
        keys,
        error: String(err),
      });
    }
  }

  /**
   * Runs `work` (inside the instance's mailbox) on the record the instance's last write on this
   * node left, else on the stored one, and again on a fresh load as long as the instance really
   * moved on: when its commit lost a race with another writer, and when it failed, committing
   * nothing, on a remembered record (its refusal may stand on a state the instance has left). A
   * ConflictError with the instance where it was means something else (a delivered timer that
   * was cancelled) and is final.
   */
  private async retryingConflicts<T>(
    key: InstanceKey,
    work: (base: WriteBase) => Promise<T>,
    load: (key: InstanceKey) => Promise<InstanceRecord> = (k) => this.load(k),
  ): Promise<T> {
    const remembered = this.cache.get(key);
    let base: WriteBase = remembered
      ? { instance: remembered, remembered: true }
      : { instance: await load(key), remembered: false };
    for (let attempt = 0; ; attempt++) {
      try {
        return await work(base);
      } catch (err) {
        if (attempt >= MAX_CONFLICT_RETRIES) throw err;
        if (!(err instanceof ConflictError) && !this.unconfirmed(base)) throw err;
        await pauseAfterLosses(attempt + 1);
        const fresh = await load(key);
        if (unchanged(base.instance, fresh)) throw err;
        base = { instance: fresh, remembered: false };
      }
    }
  }

  /**
   * retryingConflicts for work that commits an event no other check keeps from being written twice
   * (a self-sent event; a running service's event, which leaves it pending): a store error is
   * final. It may leave the commit landed, its answer lost; stepped again on a fresh read (as a
   * refusal on a remembered record is), the event would then be written a second time.
   */
  private async retryingRefusals<T>(
    key: InstanceKey,
    work: (base: WriteBase) => Promise<T>,
    load?: (key: InstanceKey) => Promise<InstanceRecord>,
  ): Promise<T> {
    let fateUnknown: Error | undefined;
    const done = await this.retryingConflicts(
      key,
      async (base) => {
        try {
          return { value: await work(base) };
        } catch (err) {
          if (!isStoreError(err)) throw err;
          fateUnknown = err as Error;
          return undefined;
        }
      },
      load,
    );
    if (done === undefined) throw fateUnknown ?? new Error("no outcome");
    return done.value;
  }

  /**
   * Whether `base` is a remembered record that no write since showed current: nothing was
   * committed on it (a commit would have replaced it), or it is gone (a failed commit, or
   * another node's notice, dropped it).
   */
  private unconfirmed(base: WriteBase): boolean {
    if (!base.remembered) return false;
    const now = this.cache.get(base.instance);
    return now === undefined || now === base.instance;
  }

  private stopAtDeadline(ref: string, version: VersionRef, serviceIds: string[]): void {
    this.runtime
      .stopServices(version, ref, serviceIds)
      .catch((err: unknown) => {
        this.logger.warn("could not stop services at the settle deadline", {
          instance: ref,
          error: String(err),
        });
      })
      .finally(() => this.committer.releaseIfIdle(version.orgId, ref));
  }

  /**
   * The state once settled: the committed one if nothing was running, else the latest stored.
   * An event settled at its own step (nothing it or an earlier step started still runs) is
   * answered at once, even when an event delivered after it in the same batch started a service:
   * that event's caller waits for it, as it would had the two come one after the other.
   */
  private async settledState(
    ref: string,
    key: InstanceKey,
    committed: Committed,
  ): Promise<InstanceState> {
    if (committed.instance.pendingServices.length === 0) return committed.state;
    if (this.activity.running(ref).length === 0) return committed.state;
    await this.activity.whenSettled(ref);
    // Let results that arrived just before the deadline finish committing.
    await this.mailbox.run(ref, () => Promise.resolve());
    let latest: InstanceRecord;
    try {
      latest = await this.load(key);
    } catch (err) {
      if (!(err instanceof BackstateError) || err.code !== "store-error") throw err;
      // The event is written: failing its answer now would have its client send it again, and
      // it would apply twice. This node's last write of the instance stands in for the read.
      this.logger.warn("could not read an instance's settled state; answered with the last known", {
        instance: ref,
        error: String(err),
      });
      const remembered = this.cache.get(key);
      latest = remembered?.id === committed.instance.id ? remembered : committed.instance;
    }
    // Deleted while it settled, and made again under its name: that is another instance, whose
    // state is not this request's to see (its allowRead was never asked). Its own is gone.
    if (latest.id !== committed.instance.id) {
      throw new NotFoundError(`instance ${key.instanceName} not found`);
    }
    return stateOf(parseEnvelope(latest.snapshot).view, latest.updatedAt);
  }

  /**
   * The instance read a service's result is stepped on when the node does not remember it (as
   * right after a reconnect): tried again on store errors, as the result's commit is, rather than
   * dropping the result in hand.
   */
  private loadForResult(key: InstanceKey): Promise<InstanceRecord> {
    return retryingStoreErrors(
      () => this.load(key),
      this.resultRetryDelaysMs,
      loggingRetries(this.logger, "read", instanceRefOf(key)),
    );
  }

  private async load(key: InstanceKey): Promise<InstanceRecord> {
    const instance = await this.store.loadInstance(key);
    if (!instance) throw new NotFoundError(`instance ${key.instanceName} not found`);
    return instance;
  }

  private keyOf(input: InstanceAddress): InstanceKey {
    return {
      orgId: input.orgId,
      machineName: checkName("machineName", input.machineName),
      instanceName: checkName("instanceName", input.instanceName),
    };
  }

  private refuseWhenClosed(): void {
    if (this.closed) throw new BackstateError("invalid-state", "the engine is shutting down");
  }
}
