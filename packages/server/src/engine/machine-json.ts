// The machine's snapshot as JSON text, for the sandbox request that steps an instance. A record
// this node built from its own commit has it already, at the opening of its envelope
// (envelopeParts): taken from there, the request needs neither a parse of the whole envelope nor
// a second serialization of the machine's part, about a microsecond an event. Any other record
// (read from the store) is parsed for it.
import type { InstanceRecord } from "../store/store.js";
import { MACHINE_OPENING, parseEnvelope } from "./instance-state.js";

/** By commit (buildCommit's) and by record (the one a commit left): records are never changed. */
const known = new WeakMap<object, string>();

/**
 * Keeps the machine JSON that `holder` (a commit, or the record one left) opens its envelope with:
 * only ever envelopeParts' own machineJson, complete JSON.stringify output, for an envelope it
 * wrote (which names its machine once). machineJsonOf's check relies on both.
 */
export function keepMachineJson(holder: object, machineJson: string | undefined): void {
  if (machineJson !== undefined) known.set(holder, machineJson);
}

/** What keepMachineJson kept for `holder`, if anything. */
export function keptMachineJson(holder: object): string | undefined {
  return known.get(holder);
}

/**
 * The machine's snapshot in `record`'s envelope, as JSON text; undefined when the envelope has
 * none. A kept text is used only if the envelope still opens with it, then a comma: a JSON value
 * is all of the text it opens that way, so it is exactly the envelope's machine part.
 */
export function machineJsonOf(record: InstanceRecord): string | undefined {
  const kept = known.get(record);
  const { snapshot } = record;
  if (
    kept !== undefined &&
    snapshot.startsWith(MACHINE_OPENING) &&
    snapshot.startsWith(kept, MACHINE_OPENING.length) &&
    snapshot.charCodeAt(MACHINE_OPENING.length + kept.length) === COMMA
  ) {
    return kept;
  }
  return JSON.stringify(parseEnvelope(snapshot).machine);
}

const COMMA = 0x2c;
