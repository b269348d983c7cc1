// The State of an instance as every API answers it, and the stored envelope it is read from.
import type { JsonValue, Step } from "../runtime/adapter-protocol.js";
import type { InstanceRecord } from "../store/store.js";

/** What create, send, get and realtime return: never the private context. */
export type InstanceState = {
  state: JsonValue;
  /** `context.public`; absent when the context has none. */
  publicContext?: JsonValue;
  tags: string[];
  done: boolean;
  /** Commit time in ms; strictly increasing per instance. */
  ts: number;
};

/** The view kept beside the machine's own snapshot, so reads need no machine code. */
export type StateView = {
  value: JsonValue;
  tags: string[];
  done: boolean;
  publicContext?: JsonValue;
};

/** The text the store keeps as an instance's snapshot. */
export type SnapshotEnvelope = { machine: JsonValue; view: StateView };

export function viewOf(step: Step): StateView {
  const view: StateView = { value: step.value, tags: step.tags, done: step.done };
  if (step.publicContext !== undefined) view.publicContext = step.publicContext;
  return view;
}

export function envelopeOf(step: Step): string {
  return JSON.stringify({ machine: step.snapshot, view: viewOf(step) } satisfies SnapshotEnvelope);
}

export function parseEnvelope(text: string): SnapshotEnvelope {
  return JSON.parse(text) as SnapshotEnvelope;
}

/**
 * The parsed envelopes of records, so the same record's text is parsed once: a record this node
 * built from a step never is (its instance's next event, the realtime updates of its commit and
 * their allowRead checks all use the step's own values). Keyed by the record: a record's snapshot
 * text never changes, and a record nobody holds any more takes its entry with it. Callers treat
 * what they get as read-only: it is shared.
 */
const envelopes = new WeakMap<InstanceRecord, SnapshotEnvelope>();

/** Records that `instance.snapshot` is the text of `envelope` (as `envelopeOf` wrote it). */
export function rememberEnvelope(instance: InstanceRecord, envelope: SnapshotEnvelope): void {
  envelopes.set(instance, envelope);
}

/** A record's envelope, parsed once. */
export function envelopeOfRecord(instance: InstanceRecord): SnapshotEnvelope {
  let envelope = envelopes.get(instance);
  if (envelope === undefined) {
    envelope = parseEnvelope(instance.snapshot);
    envelopes.set(instance, envelope);
  }
  return envelope;
}

export function stateOf(view: StateView, ts: number): InstanceState {
  const state: InstanceState = { state: view.value, tags: view.tags, done: view.done, ts };
  if (view.publicContext !== undefined) state.publicContext = view.publicContext;
  return state;
}
