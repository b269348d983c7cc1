import assert from "node:assert/strict";
import { test } from "node:test";
import type { Step } from "../runtime/adapter-protocol.js";
import { envelopeOf, isCurrentRun, parseEnvelope, serviceRunsAfter } from "./instance-state.js";

const stepOf = (stepId: string, servicesStarted: string[] = []): Step =>
  ({ stepId, servicesStarted, snapshot: {}, value: "s", tags: [], done: false }) as unknown as Step;

const stored = (step: Step, pending: string[], previous?: { snapshot: string }) => ({
  snapshot: envelopeOf(step, serviceRunsAfter(previous, step, pending)),
});

test("a service's run is the step that started it, kept until a step starts it again", () => {
  const first = stored(stepOf("s1", ["job", "poll"]), ["job", "poll"]);
  assert.deepEqual(parseEnvelope(first.snapshot).runs, { job: "s1", poll: "s1" });
  // A step that starts neither keeps both runs; one that re-enters `job` gives it a new run.
  const second = stored(stepOf("s2"), ["job", "poll"], first);
  assert.deepEqual(parseEnvelope(second.snapshot).runs, { job: "s1", poll: "s1" });
  const third = stored(stepOf("s3", ["job"]), ["job", "poll"], second);
  assert.deepEqual(parseEnvelope(third.snapshot).runs, { job: "s3", poll: "s1" });
  assert.equal(isCurrentRun(third, "job", "s1"), false, "replaced");
  assert.equal(isCurrentRun(third, "job", "s3"), true);
  assert.equal(isCurrentRun(third, "poll", "s1"), true);
  // Services no longer pending are forgotten; with none pending, no runs are kept at all.
  const fourth = stored(stepOf("s4"), ["poll"], third);
  assert.deepEqual(parseEnvelope(fourth.snapshot).runs, { poll: "s1" });
  assert.equal(parseEnvelope(stored(stepOf("s5"), [], fourth).snapshot).runs, undefined);
});

test("an envelope written before runs were kept refuses no run", () => {
  const legacy = {
    snapshot: JSON.stringify({ machine: {}, view: { value: "s", tags: [], done: false } }),
  };
  assert.equal(isCurrentRun(legacy, "job", "any"), true);
  // The next step keeps runs only for the services it starts itself.
  const next = stored(stepOf("s9", ["other"]), ["job", "other"], legacy);
  assert.deepEqual(parseEnvelope(next.snapshot).runs, { other: "s9" });
  assert.equal(isCurrentRun(next, "job", "whatever"), true);
});
