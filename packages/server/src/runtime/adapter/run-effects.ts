// Runs a committed step's effects, in the order XState runs them. Used for an instance's steps
// once the engine says they are committed (handler.ts), and for a child machine's own steps as it
// runs in the sandbox (v4-child-machine.ts).
import type { StepEffects } from "./driver.js";
import type { ServiceRegistry } from "./services.js";

/**
 * Actions in order, then the messages to services the step stops that were sent before the stop
 * (they reach the run being stopped), then stops, then messages to running services, then new
 * services, then the messages sent after their service's start in the step (they reach the run it
 * starts), then the delayed messages (so one for a service this step starts reaches that run).
 * `actionFailed` says whether the rest goes on after an action threw.
 */
export function runEffects(
  effects: StepEffects,
  servicesStopped: string[],
  instanceRef: string,
  runId: string,
  services: ServiceRegistry,
  actionFailed: (error: unknown) => boolean,
): void {
  for (const action of effects.actions) {
    try {
      action();
    } catch (err) {
      if (!actionFailed(err)) return;
    }
  }
  const { serviceMessages } = effects;
  for (const { serviceId, event, beforeStop } of serviceMessages) {
    if (beforeStop) services.send(instanceRef, serviceId, event);
  }
  for (const id of servicesStopped) services.stop(instanceRef, id);
  for (const { serviceId, event, delayMs, toNewRun, beforeStop } of serviceMessages) {
    if (delayMs === undefined && !toNewRun && !beforeStop)
      services.send(instanceRef, serviceId, event);
  }
  for (const service of effects.services) {
    services.start(instanceRef, service.id, runId, service.starter, service.failure);
  }
  for (const { serviceId, event, delayMs, toNewRun } of serviceMessages) {
    if (delayMs === undefined && toNewRun) services.send(instanceRef, serviceId, event);
  }
  // Cancels before this step's own delayed sends: a send after a cancel of its id re-arms it.
  for (const sendId of effects.cancels) services.cancelLater(instanceRef, sendId);
  for (const { serviceId, event, delayMs, sendId } of serviceMessages) {
    if (delayMs !== undefined) services.sendLater(instanceRef, serviceId, event, delayMs, sendId);
  }
}
