// The State of an instance as every API answers it, and the stored envelope it is read from.
import type { JsonValue, Step } from "../runtime/adapter-protocol.js";

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

export function stateOf(view: StateView, ts: number): InstanceState {
  const state: InstanceState = { state: view.value, tags: view.tags, done: view.done, ts };
  if (view.publicContext !== undefined) state.publicContext = view.publicContext;
  return state;
}
