// Running services (invoked promises, callbacks, child actors) of the instances this sandbox
// serves. A service reports once, through `notify`, and is forgotten when it finishes or stops.
import type { AdapterNotification, MachineEvent } from "../adapter-protocol.js";

/** Starts a service; returns how to stop it. `report` delivers an event to the instance. */
export type ServiceStarter = (report: (event: MachineEvent, final: boolean) => void) => {
  stop: () => void;
  send?: (event: MachineEvent) => void;
};

export type Running = { stop: () => void; send?: (event: MachineEvent) => void };
type Later = ReturnType<typeof setTimeout>;

// Taken when the adapter loads, before any machine code runs: a machine that replaced the global
// could not reach other instances' delayed sends through it.
export const later = setTimeout;
export const unlater = clearTimeout;
/** The longest delay a timer takes; beyond it, Node would fire at once. */
export const MAX_DELAY_MS = 2 ** 31 - 1;

export class ServiceRegistry {
  private readonly byInstance = new Map<string, Map<string, Running>>();
  /** Delayed sends waiting, by instance and by the id they may be cancelled by. */
  private readonly delayed = new Map<string, Map<string, Later>>();
  /**
   * Every delayed send waiting for a run, with its id if it has one: they can only reach that
   * run, so they go when it ends (else each would hold its timer and event until its delay ran
   * out, up to 24 days, for every service that came and went).
   */
  private readonly laterFor = new Map<Running, Map<Later, string | undefined>>();
  /** How many delayed sends wait under each id, over all instances. */
  private readonly delayedIds = new Map<string, number>();

  constructor(private readonly notify: (notification: AdapterNotification) => void) {}

  /**
   * Starts a service; `failure` turns a synchronous start error into the event to report. Its
   * reports carry `runId` (the step that started it), which tells this run from later ones.
   */
  start(
    instanceRef: string,
    serviceId: string,
    runId: string,
    starter: ServiceStarter,
    failure: (error: unknown) => MachineEvent,
  ): void {
    this.stop(instanceRef, serviceId); // a re-entered invoke replaces its predecessor
    let finished = false;
    const report = (event: MachineEvent, final: boolean) => {
      if (finished) return;
      if (final) {
        finished = true;
        this.forget(instanceRef, serviceId, running);
      }
      this.notify({ type: "service-event", instanceRef, serviceId, runId, event, final });
    };
    let running: Running;
    try {
      running = starter(report);
    } catch (err) {
      running = { stop: () => {} };
      report(failure(err), true);
      return;
    }
    if (finished) return;
    // Registered only now: a start that threw or finished at once leaves no entry behind, which
    // would hold the registry busy (never idle, so its version never dropped) for good.
    const services = this.byInstance.get(instanceRef) ?? new Map<string, Running>();
    this.byInstance.set(instanceRef, services);
    services.set(serviceId, running);
  }

  send(instanceRef: string, serviceId: string, event: MachineEvent): void {
    this.byInstance.get(instanceRef)?.get(serviceId)?.send?.(event);
  }

  /**
   * Sends `event` to the service's current run after `delayMs`, if that run still runs then: a
   * run that stopped takes its delayed events with it, and a later run of the same id gets none.
   */
  sendLater(
    instanceRef: string,
    serviceId: string,
    event: MachineEvent,
    delayMs: number,
    sendId?: string,
  ): void {
    const running = this.byInstance.get(instanceRef)?.get(serviceId);
    if (!running) return;
    const handle = later(
      () => {
        this.forgetDelayed(instanceRef, sendId, handle, running);
        if (this.byInstance.get(instanceRef)?.get(serviceId) === running) running.send?.(event);
      },
      Math.min(delayMs, MAX_DELAY_MS),
    );
    const forRun = this.laterFor.get(running) ?? new Map<Later, string | undefined>();
    this.laterFor.set(running, forRun);
    forRun.set(handle, sendId);
    if (sendId === undefined) return;
    // A later send under the same id is the one a cancel reaches (as in XState).
    const waiting = this.delayed.get(instanceRef) ?? new Map<string, Later>();
    this.delayed.set(instanceRef, waiting);
    if (!waiting.has(sendId)) this.delayedIds.set(sendId, (this.delayedIds.get(sendId) ?? 0) + 1);
    waiting.set(sendId, handle);
  }

  /** Cancels the instance's delayed send `sendId`, if one waits. */
  cancelLater(instanceRef: string, sendId: string): void {
    const handle = this.delayed.get(instanceRef)?.get(sendId);
    if (handle === undefined) return;
    unlater(handle);
    this.forgetDelayed(instanceRef, sendId, handle);
    for (const forRun of this.laterFor.values()) forRun.delete(handle);
  }

  /** Whether nothing runs here: no service, and no delayed send waiting for one. */
  get idle(): boolean {
    return this.byInstance.size === 0 && this.delayed.size === 0 && this.laterFor.size === 0;
  }

  /** Whether a delayed send `sendId` of any instance waits here. */
  hasDelayed(sendId: string): boolean {
    return this.delayedIds.has(sendId);
  }

  private forgetDelayed(
    instanceRef: string,
    sendId: string | undefined,
    handle: Later,
    running?: Running,
  ): void {
    if (running !== undefined) {
      const forRun = this.laterFor.get(running);
      forRun?.delete(handle);
      if (forRun?.size === 0) this.laterFor.delete(running);
    }
    if (sendId === undefined) return;
    const waiting = this.delayed.get(instanceRef);
    if (waiting?.get(sendId) !== handle) return;
    waiting.delete(sendId);
    if (waiting.size === 0) this.delayed.delete(instanceRef);
    const left = (this.delayedIds.get(sendId) ?? 1) - 1;
    if (left > 0) this.delayedIds.set(sendId, left);
    else this.delayedIds.delete(sendId);
  }

  stop(instanceRef: string, serviceId: string): void {
    const running = this.byInstance.get(instanceRef)?.get(serviceId);
    if (!running) return;
    this.forget(instanceRef, serviceId, running);
    try {
      running.stop();
    } catch {
      // A service that fails to stop is already forgotten; nothing else to do.
    }
  }

  /** Stops every service of the instance (a child machine's own, when that child ends). */
  stopAll(instanceRef: string): void {
    for (const serviceId of [...(this.byInstance.get(instanceRef)?.keys() ?? [])])
      this.stop(instanceRef, serviceId);
  }

  private forget(instanceRef: string, serviceId: string, running: Running | undefined): void {
    // The run is over: what was sent to it for later can reach nothing.
    const forRun = running === undefined ? undefined : this.laterFor.get(running);
    if (running !== undefined && forRun !== undefined) {
      this.laterFor.delete(running);
      for (const [handle, sendId] of forRun) {
        unlater(handle);
        if (sendId !== undefined) this.forgetDelayed(instanceRef, sendId, handle);
      }
    }
    const services = this.byInstance.get(instanceRef);
    if (!services || services.get(serviceId) !== running) return;
    services.delete(serviceId);
    if (services.size === 0) this.byInstance.delete(instanceRef);
  }
}
