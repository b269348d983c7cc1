// The realtime hub: which sockets watch which instances, and the fan-out of each committed
// update to them. allowRead is asked once per update per distinct authContext (not per socket),
// mostly with the step itself (the hub names each instance's readers to the engine: see
// engine/read-audience.ts), and a watcher it refuses loses the subscription with an error
// message. Updates come from the update bus: this node's with their record, other nodes' as a
// key, loaded from the store only when a socket here watches that instance.
import type { Authenticator } from "../auth/authenticator.js";
import { BackstateError } from "../errors.js";
import type { Engine, InstanceUpdate } from "../engine/engine.js";
import { nobodyWatches } from "../engine/read-audience.js";
import { instanceKeyOfRef, instanceRefOf } from "../engine/step-committer.js";
import type { Logger } from "../engine/logger.js";
import { errorResponse } from "../http/error-response.js";
import { wireState } from "../http/wire.js";
import type { InstanceKey, Store } from "../store/store.js";
import type { Connection, Subscription } from "./connection.js";
import { InstanceWatchers } from "./instance-watchers.js";
import type { ClientMessage, InstanceUpdateMessage } from "./protocol.js";
import type { BusUpdate, UpdateBus } from "./update-bus.js";

type Subscribe = Extract<ClientMessage, { type: "subscribe-to-instance" }>;

/** Why a subscription ends when the instance row it watched is gone. */
const DELETED = { status: 404, code: "not-found", error: "the instance was deleted" } as const;

/** The first wait before loading again another node's update whose load failed, and the longest. */
const RETRY_FIRST_MS = 250;
const RETRY_MAX_MS = 10_000;

export class RealtimeHub {
  private readonly watchers = new Map<string, InstanceWatchers>();
  /** Loads of other nodes' updates under way, per instance ref; `again` when another arrived. */
  private readonly loading = new Map<string, { again: boolean }>();
  /** Instances whose last load failed: the wait before the next try (doubling, up to a cap). */
  private readonly retryDelays = new Map<string, number>();
  private closed = false;
  private readonly stopListening: () => void;

  constructor(
    private readonly deps: {
      engine: Engine;
      store: Store;
      authenticator: Authenticator;
      logger: Logger;
      /** How long after its expiry a socket's token still admits new subscriptions. */
      tokenGraceSeconds: number;
      /** Every node's updates; without it, this node's engine's only. */
      updates?: UpdateBus;
    },
  ) {
    const listener = (update: BusUpdate) => this.onUpdate(update);
    this.stopListening = deps.updates
      ? deps.updates.subscribe(listener)
      : deps.engine.onInstanceUpdate(listener);
    deps.engine.watchReaders(
      (key, limit) => this.watchers.get(instanceRefOf(key))?.readers(limit) ?? [],
    );
  }

  get watchedInstances(): number {
    return this.watchers.size;
  }

  async subscribe(connection: Connection, message: Subscribe): Promise<void> {
    const { requestId } = message;
    // The same subscribe again (the client replays its subscribes when a socket opens, and may
    // have queued them too): being admitted, it will answer; live, it has had its state. Either
    // way nothing changes. Unless a subscribe with this id to something else is being admitted:
    // this one, the later, stands.
    const pending = connection.admitting.get(requestId);
    if (
      pending?.machineName === message.machineName &&
      pending.instanceName === message.machineInstanceName
    ) {
      return;
    }
    const live = connection.subscriptions.get(requestId);
    if (
      live?.machineName === message.machineName &&
      live.instanceName === message.machineInstanceName &&
      !connection.admitting.has(requestId)
    ) {
      return;
    }
    // Counted on arrival, before anything is awaited: every other request id held or being
    // admitted takes a place (one replacing its own id takes none), so subscribes sent together
    // get places in the order they came, and no more than the limit.
    const others = new Set([...connection.subscriptions.keys(), ...connection.admitting.keys()]);
    others.delete(requestId);
    if (others.size >= connection.limits.maxSubscriptions) {
      const { maxSubscriptions } = connection.limits;
      return this.refuse(
        connection,
        requestId,
        new BackstateError(
          "invalid-parameter",
          `a socket may hold at most ${maxSubscriptions} subscriptions`,
        ),
      );
    }
    // Every subscribe under way holds a store read, and then a read of the instance with its
    // allowRead, until it ends, whether it was replaced or unsubscribed since or not: bounded
    // too, or repeating one subscribe (or subscribe and unsubscribe) started reads without limit.
    // This refusal is the id's answer: an earlier attempt of it ends unanswered.
    if (connection.subscribesUnderWay >= connection.limits.maxSubscriptions) {
      connection.admitting.delete(requestId);
      return this.refuse(
        connection,
        requestId,
        new BackstateError(
          "invalid-parameter",
          `a socket may have at most ${connection.limits.maxSubscriptions} subscribes being checked at once`,
        ),
      );
    }
    connection.subscribesUnderWay++;
    try {
      await this.admitAndRead(connection, message);
    } finally {
      connection.subscribesUnderWay--;
    }
  }

  /** The rest of a subscribe: its admission, then the instance's current state. */
  private async admitAndRead(connection: Connection, message: Subscribe): Promise<void> {
    const { requestId } = message;
    const { principal } = connection;
    const attempt = { machineName: message.machineName, instanceName: message.machineInstanceName };
    connection.admitting.set(requestId, attempt);
    let refusal: unknown;
    try {
      await this.admit(connection);
    } catch (err) {
      refusal = err ?? new Error("refused");
    }
    // Unsubscribed, subscribed again or closed meanwhile: this attempt is over, unanswered.
    if (connection.admitting.get(requestId) !== attempt) return;
    connection.admitting.delete(requestId);
    if (refusal !== undefined) return this.refuse(connection, requestId, refusal);
    const key = {
      orgId: principal.orgId,
      machineName: message.machineName,
      instanceName: message.machineInstanceName,
    };
    const subscription: Subscription = {
      requestId,
      ref: instanceRefOf(key),
      machineName: key.machineName,
      instanceName: key.instanceName,
    };
    // Watch first, then read: an update committed in between is sent (sendCurrentState never
    // goes back to the older of the two), never missed.
    this.unsubscribe(connection, requestId);
    connection.subscriptions.set(requestId, subscription);
    this.watch(subscription.ref, connection);
    try {
      const { instanceId, state } = await this.deps.engine.readInstanceRow({
        ...key,
        authContext: principal.authContext,
      });
      if (connection.subscriptions.get(requestId) !== subscription) return;
      // The socket's other subscriptions to the name were shown an older row, since deleted
      // (its notice missed, or on its way): they end as the delete ends them, rather than be
      // moved over to this one with the frame both share.
      if (showsOlderRow(connection, subscription.ref, instanceId)) {
        this.drop(connection, subscription.ref, DELETED, subscription);
      }
      const frame = this.frameOf(subscription.ref, instanceId, state.ts, () =>
        updateFrame(subscription, wireState(state)),
      );
      connection.sendCurrentState(subscription.ref, instanceId, state.ts, frame);
    } catch (err) {
      // Unsubscribed, replaced by a newer subscribe with this id, or dropped with its reason
      // meanwhile: as for an admission, this read answers nothing (an error would name the
      // request id of whatever holds it now).
      if (connection.subscriptions.get(requestId) !== subscription) return;
      this.unsubscribe(connection, requestId);
      this.refuse(connection, requestId, err);
    }
  }

  unsubscribe(connection: Connection, requestId: string): void {
    connection.admitting.delete(requestId);
    const subscription = connection.subscriptions.get(requestId);
    if (!subscription) return;
    connection.subscriptions.delete(requestId);
    connection.forget(subscription.ref);
    if (!connection.watches(subscription.ref)) {
      const set = this.watchers.get(subscription.ref);
      set?.delete(connection);
      if (set?.size === 0) this.watchers.delete(subscription.ref);
    }
  }

  disconnect(connection: Connection): void {
    connection.admitting.clear();
    for (const requestId of [...connection.subscriptions.keys()]) {
      this.unsubscribe(connection, requestId);
    }
  }

  close(): void {
    this.closed = true;
    this.stopListening();
    this.deps.engine.watchReaders(nobodyWatches);
  }

  /**
   * A subscription is admitted while the socket's token is unexpired or within the grace the
   * handshake gives (a live subscription is never cut off by expiry; a new one is held to the
   * rule its socket's handshake was), its key or session still exists, and it holds state.read.
   * (The socket's subscription limit is checked on arrival.)
   */
  private async admit(connection: Connection): Promise<void> {
    const { caller, scopes } = connection.principal;
    this.deps.authenticator.checkExpiry(caller, {
      expiredGraceSeconds: this.deps.tokenGraceSeconds,
    });
    if (!(await this.deps.authenticator.stillValid(caller))) {
      throw new BackstateError("token-missing", "the socket's key or session no longer exists");
    }
    if (!scopes.has("state.read")) {
      throw new BackstateError("missing-scope", "subscribing needs the state.read scope");
    }
  }

  private refuse(connection: Connection, requestId: string, err: unknown): void {
    const { status, body } = errorResponse(err, this.deps.logger);
    connection.sendError({ requestId, status, code: body.code, error: body.error });
  }

  private watch(ref: string, connection: Connection): void {
    let watchers = this.watchers.get(ref);
    if (!watchers) this.watchers.set(ref, (watchers = new InstanceWatchers()));
    watchers.add(connection);
  }

  private onUpdate(update: BusUpdate): void {
    switch (update.kind) {
      case "state":
        return this.fanOut(update);
      case "deleted":
        // Another node's delete names its row, and may come late, after the instance was made
        // again under its name and watched here as the new row: what exists now is read, and
        // only those shown the deleted row (or an older one) lose their subscription (see
        // deliver). One that names no row is this node's own, in order with its commits, or an
        // older node's (during a rolling upgrade): every watcher of the name loses it, as before.
        if (update.instanceId === undefined) return this.fanOut(update);
        return this.reload(instanceRefOf(update.key), update.key);
      case "changed":
        return this.reload(instanceRefOf(update.key), update.key);
      case "resync":
        for (const ref of this.watchers.keys()) this.reload(ref, instanceKeyOfRef(ref));
        return;
      case "timers-armed":
      case "paused":
        // A pause changes no state a subscriber sees.
        return;
    }
  }

  /**
   * Another node changed the instance (or may have): when a socket here watches it, its latest
   * record is loaded and delivered like a local update; the sockets' ts check drops a state they
   * already have. One load per instance at a time: updates arriving meanwhile cause one more.
   */
  private reload(ref: string, key: InstanceKey): void {
    if (this.closed || !this.watchers.has(ref)) {
      this.retryDelays.delete(ref);
      return;
    }
    const running = this.loading.get(ref);
    if (running) {
      running.again = true;
      return;
    }
    const state = { again: false };
    this.loading.set(ref, state);
    const loop = async () => {
      try {
        do {
          state.again = false;
          const instance = await this.deps.store.loadInstance(key);
          if (instance) {
            this.fanOut({ kind: "state", instance, state: this.deps.engine.stateOf(instance) });
          } else this.fanOut({ kind: "deleted", key });
        } while (state.again && this.watchers.has(ref));
        this.retryDelays.delete(ref);
      } finally {
        // At once, in the same turn as the last check of `again`: no update can slip between.
        this.loading.delete(ref);
      }
    };
    loop().catch((err: unknown) => {
      this.deps.logger.error("another node's update could not be loaded", {
        instance: ref,
        error: String(err),
      });
      // Its notice will not come again: without another try, the watchers here stay at the
      // older state until the instance changes again, which may be never.
      const delay = Math.min((this.retryDelays.get(ref) ?? RETRY_FIRST_MS / 2) * 2, RETRY_MAX_MS);
      this.retryDelays.set(ref, delay);
      setTimeout(() => this.reload(ref, key), delay).unref();
    });
  }

  /** The frame of a state, shared by every socket watching the instance (instance-watchers.ts). */
  private frameOf(ref: string, instanceId: number, ts: number, build: () => string): string {
    return this.watchers.get(ref)?.frameOf(instanceId, ts, build) ?? build();
  }

  private fanOut(update: InstanceUpdate): void {
    const ref = instanceRefOf(update.kind === "state" ? update.instance : update.key);
    const watching = this.watchers.get(ref);
    if (!watching || watching.size === 0) return;
    if (update.kind === "deleted") {
      for (const connection of [...watching.connections]) this.drop(connection, ref, DELETED);
      return;
    }
    this.deliver(update, ref, [...watching.connections]).catch((err: unknown) =>
      this.deps.logger.error("a realtime update was not delivered", {
        instance: ref,
        error: String(err),
      }),
    );
  }

  private async deliver(
    { instance, state, reads }: Extract<InstanceUpdate, { kind: "state" }>,
    ref: string,
    connections: Connection[],
  ): Promise<void> {
    const byAuth = new Map<string, Connection[]>();
    for (const connection of connections) {
      const group = byAuth.get(connection.authKey);
      if (group) group.push(connection);
      else byAuth.set(connection.authKey, [connection]);
    }
    const names = { machineName: instance.machineName, instanceName: instance.instanceName };
    const frame = this.frameOf(ref, instance.id, state.ts, () =>
      updateFrame(names, wireState(state)),
    );
    await Promise.all(
      [...byAuth.values()].map(async (group) => {
        const { authKey, principal } = group[0]!;
        // A check that could not be made (its sandbox died or timed out) is no decision: the
        // subscription ends as on a refusal, since the state may not be shown, but with what
        // went wrong, not a refusal allowRead never gave.
        const allowed: boolean | { failed: unknown } =
          reads?.get(authKey) ??
          (await this.deps.engine
            .canRead(instance, principal.authContext)
            .catch((failed: unknown) => ({ failed })));
        for (const connection of group) {
          // A decision that had to wait for its own read may come after a newer state's (asked
          // with its step): the newer one stands, whether it showed that state or ended the
          // subscription.
          if (!connection.watches(ref) || connection.hasSeen(ref, instance.id, state.ts)) continue;
          // Shown an older row of the name (by now: a subscribe may have read one meanwhile), it
          // watched an instance since deleted, whose notice was missed or is on its way: the
          // subscription ends as the delete would end it, rather than go on with another one.
          if (showsOlderRow(connection, ref, instance.id)) this.drop(connection, ref, DELETED);
          else if (allowed === true) connection.sendUpdate(ref, instance.id, state.ts, frame);
          else if (allowed === false) {
            this.drop(connection, ref, {
              status: 403,
              code: "rejected-by-machine-authorizer",
              error: "the machine's allowRead no longer lets you read this instance",
            });
          } else {
            const { status, body } = errorResponse(allowed.failed, this.deps.logger);
            this.drop(connection, ref, { status, ...body });
          }
        }
      }),
    );
  }

  /** Ends every subscription of the socket on the instance (but `keep`), telling each one why. */
  private drop(
    connection: Connection,
    ref: string,
    why: { status: number; code: string; error: string },
    keep?: Subscription,
  ) {
    for (const subscription of connection.subscriptionsOf(ref)) {
      if (subscription === keep) continue;
      this.unsubscribe(connection, subscription.requestId);
      connection.sendError({ requestId: subscription.requestId, ...why });
    }
  }
}

/** Whether the socket was last shown a row of the instance's name older than `instanceId`. */
function showsOlderRow(connection: Connection, ref: string, instanceId: number): boolean {
  const shown = connection.rowShown(ref);
  return shown !== undefined && shown < instanceId;
}

function updateFrame(
  names: { machineName: string; instanceName: string },
  state: ReturnType<typeof wireState>,
): string {
  const message: InstanceUpdateMessage = {
    type: "instance-update",
    machineName: names.machineName,
    machineInstanceName: names.instanceName,
    ...state,
  };
  return JSON.stringify(message);
}
