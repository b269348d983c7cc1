// The State of an instance as every API answers it, and the stored envelope it is read from.
import type { JsonValue, Step } from "../runtime/adapter-protocol.js";
import { withJsonFirst } from "../runtime/snapshot-payload.js";

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

/**
 * Which run of each pending service is current: the id of the step that started it. A node can
 * only know from the store that another node stopped and started a service again (a re-entered
 * invoke keeps its id, so the pending services read the same).
 */
export type ServiceRuns = Record<string, string>;

/**
 * The text the store keeps as an instance's snapshot. `runs` is absent when no service is pending,
 * and in envelopes written before it was kept.
 */
export type SnapshotEnvelope = {
  machine: JsonValue;
  view: StateView;
  runs?: ServiceRuns;
  /**
   * A random id of the commit that wrote it, kept by commits tried again after a store error: a
   * later try can then tell its own landed write from another writer's of the same event, state
   * and time (result-commit-retries.ts).
   */
  write?: string;
};

export function viewOf(step: Step): StateView {
  const view: StateView = { value: step.value, tags: step.tags, done: step.done };
  if (step.publicContext !== undefined) view.publicContext = step.publicContext;
  return view;
}

export function envelopeOf(step: Step, runs?: ServiceRuns, write?: string): string {
  return envelopeParts(step, runs, write).envelope;
}

/** How an envelope this node writes opens: its machine's snapshot comes first (see envelopeParts). */
export const MACHINE_OPENING = '{"machine":';

/**
 * The envelope's text, as JSON.stringify writes a SnapshotEnvelope, and the machine's snapshot
 * as JSON text within it: right after MACHINE_OPENING. The instance's next step sends the
 * machine's part as it is (machine-json.ts), so it is written once and never parsed back out.
 */
export function envelopeParts(
  step: Step,
  runs?: ServiceRuns,
  write?: string,
): { envelope: string; machineJson: string | undefined } {
  const rest: Omit<SnapshotEnvelope, "machine"> = { view: viewOf(step) };
  if (runs !== undefined) rest.runs = runs;
  if (write !== undefined) rest.write = write;
  // Undefined for a snapshot JSON cannot write (no snapshot at all): the whole object then, as
  // before, which leaves the machine out.
  const machineJson = JSON.stringify(step.snapshot) as string | undefined;
  if (machineJson === undefined) {
    return { envelope: JSON.stringify({ machine: step.snapshot, ...rest }), machineJson };
  }
  const envelope = withJsonFirst("machine", machineJson, rest);
  // A slice of the envelope (which flattens it) rather than the text it was made of: the two
  // share their characters, where the record kept with both would otherwise hold them twice.
  return {
    envelope,
    machineJson: envelope.slice(
      MACHINE_OPENING.length,
      MACHINE_OPENING.length + machineJson.length,
    ),
  };
}

export function parseEnvelope(text: string): SnapshotEnvelope {
  return JSON.parse(text) as SnapshotEnvelope;
}

export function stateOf(view: StateView, ts: number): InstanceState {
  const state: InstanceState = { state: view.value, tags: view.tags, done: view.done, ts };
  if (view.publicContext !== undefined) state.publicContext = view.publicContext;
  return state;
}

/**
 * The runs of the services pending after `step` (`pending`): those it started are its own; the
 * others keep the run they had in `previous`. Undefined when none is pending.
 */
export function serviceRunsAfter(
  previous: { snapshot: string } | undefined,
  step: Step,
  pending: readonly string[],
): ServiceRuns | undefined {
  if (pending.length === 0) return undefined;
  // The previous envelope is read only for a service this step did not start itself.
  const carried = pending.some((id) => !step.servicesStarted.includes(id));
  const before =
    carried && previous !== undefined ? parseEnvelope(previous.snapshot).runs : undefined;
  const runs: ServiceRuns = {};
  for (const id of pending) {
    const run = step.servicesStarted.includes(id) ? step.stepId : before?.[id];
    if (run !== undefined) runs[id] = run;
  }
  return Object.keys(runs).length > 0 ? runs : undefined;
}

/**
 * Whether `runId` is the service's current run in the stored record: false once a step (on any
 * node) started it again. An envelope that names no run for it (written before runs were kept)
 * cannot tell, and does not refuse.
 */
export function isCurrentRun(
  instance: { snapshot: string },
  serviceId: string,
  runId: string,
): boolean {
  const run = parseEnvelope(instance.snapshot).runs?.[serviceId];
  return run === undefined || run === runId;
}
