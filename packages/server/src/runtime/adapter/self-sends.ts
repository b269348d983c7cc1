// Where what a step's custom actions send their own instance through `self` goes (XState 5): to
// the host, as a notification, which applies it to the instance after the step that sent it (the
// step is committed before its actions run, so the event cannot be part of it). The event is
// machine code's: it must be JSON and an event (an object with a string `type`), as a service's
// events must, and one step's actions may send only so many, now or later (from a timer or a
// promise an action started); the rest are dropped, and the machine log says so once per step
// for each reason, however often it happened.
import {
  MAX_SELF_SENDS_PER_STEP,
  type AdapterNotification,
  type MachineEvent,
} from "../adapter-protocol.js";
import { toJsonSafe } from "../json-check.js";
import type { SelfSendSink } from "./instance-self.js";

/** The sink of the `self` of step `stepId`'s actions, once the step executes for `instanceRef`. */
export function selfSendsToInstance(
  notify: (notification: AdapterNotification) => void,
  instanceRef: string,
  stepId: string,
): SelfSendSink {
  let sent = 0;
  const told = new Set<string>();
  const drop = (why: string): void => {
    if (told.has(why)) return;
    told.add(why);
    notify({ type: "log", level: "warn", message: `self.send from an action was dropped: ${why}` });
  };
  return (sentEvent) => {
    if (sent >= MAX_SELF_SENDS_PER_STEP) {
      drop(`a step's actions may send their instance at most ${MAX_SELF_SENDS_PER_STEP} events`);
      return;
    }
    const event = eventOf(sentEvent);
    if (event === undefined) {
      drop("the event is not JSON, or not an object with a string type");
      return;
    }
    sent++;
    try {
      notify({ type: "self-event", instanceRef, stepId, event });
    } catch {
      // Too large even cut down to its type (a type of megabytes): it cannot leave the sandbox.
      drop("the event is too large");
    }
  };
}

/** A JSON copy of what an action sent, if it is an event; undefined if it is not. */
function eventOf(sent: unknown): MachineEvent | undefined {
  // Copied before it is looked at: a getter of machine code's runs once, here, and no later.
  const copy = toJsonSafe(sent) as { type?: unknown } | null | undefined;
  if (typeof copy !== "object" || copy === null || Array.isArray(copy)) return undefined;
  return typeof copy.type === "string" ? (copy as MachineEvent) : undefined;
}
