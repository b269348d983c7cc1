import assert from "node:assert/strict";
import { test } from "node:test";
import type { Step } from "../runtime/adapter-protocol.js";
import { instanceRecord } from "../store/instance-record.js";
import type { InstanceRecord } from "../store/store.js";
import { envelopeParts, parseEnvelope } from "./instance-state.js";
import { keepMachineJson, keptMachineJson, machineJsonOf } from "./machine-json.js";

const stepWith = (snapshot: unknown, publicContext?: unknown): Step =>
  ({
    stepId: "s1",
    servicesStarted: [],
    snapshot,
    value: { a: "b" },
    tags: ["t"],
    done: false,
    ...(publicContext === undefined ? {} : { publicContext }),
  }) as unknown as Step;

const recordOf = (snapshot: string): InstanceRecord =>
  instanceRecord({
    orgId: "o",
    machineName: "m",
    instanceName: "i",
    id: 1,
    machineVersionId: "v",
    snapshot,
    status: "running",
    sequence: 1,
    pendingServices: [],
    createdAt: 1,
    updatedAt: 1,
  });

// Machine snapshots whose JSON holds what a naive split of the envelope would trip on.
const snapshots: unknown[] = [
  { status: "active", value: "on", context: { public: { flips: 2 } }, children: {} },
  { context: { view: { x: 1 }, note: '","view":{' }, value: 'a\n\u2028"}' },
  { a: [1, 2, { b: null }], "": "", "\u00e9": 1.5e300 },
  [],
  "text",
  12,
  null,
];

test("envelopeParts writes what JSON.stringify writes, the machine's JSON at its opening", () => {
  for (const snapshot of snapshots) {
    for (const [runs, write] of [
      [undefined, undefined],
      [{ job: "s1" }, undefined],
      [{ job: "s1" }, "w-1"],
    ] as const) {
      const step = stepWith(snapshot, { flips: 1 });
      const { envelope, machineJson } = envelopeParts(step, runs, write);
      const expected: Record<string, unknown> = {
        machine: snapshot,
        view: { value: step.value, tags: step.tags, done: step.done, publicContext: { flips: 1 } },
      };
      if (runs !== undefined) expected.runs = runs;
      if (write !== undefined) expected.write = write;
      assert.equal(envelope, JSON.stringify(expected));
      assert.equal(machineJson, JSON.stringify(snapshot));
      assert.equal(envelope.indexOf(machineJson), '{"machine":'.length);
    }
  }
  // No snapshot at all: left out of the envelope, as JSON.stringify leaves it out.
  const bare = envelopeParts(stepWith(undefined));
  assert.equal(bare.machineJson, undefined);
  assert.deepEqual(Object.keys(JSON.parse(bare.envelope) as object), ["view"]);
});

test("a record's machine JSON is the kept text when its envelope opens with it, else read from it", () => {
  for (const snapshot of snapshots) {
    const { envelope, machineJson } = envelopeParts(stepWith(snapshot));
    const parsed = JSON.stringify(parseEnvelope(envelope).machine);
    // Nothing kept (a record read from the store): read out of the envelope.
    assert.equal(machineJsonOf(recordOf(envelope)), parsed);
    const kept = recordOf(envelope);
    keepMachineJson(kept, machineJson);
    assert.equal(keptMachineJson(kept), machineJson);
    assert.equal(machineJsonOf(kept), machineJson);
  }
  // A kept text that is not the envelope's machine part is never sent: a stale one (another
  // snapshot's), and one that is only a prefix of it (a number cut short) are both read again.
  const { envelope } = envelopeParts(stepWith({ flips: 3 }));
  const stale = recordOf(envelope);
  keepMachineJson(stale, JSON.stringify({ flips: 2 }));
  assert.equal(machineJsonOf(stale), '{"flips":3}');
  const numeric = recordOf(envelopeParts(stepWith(123)).envelope);
  keepMachineJson(numeric, "12");
  assert.equal(machineJsonOf(numeric), "123");
  // An envelope that does not open with its machine (another key of the same length first): a
  // kept text found where the machine would be is not the machine's.
  const reordered = recordOf('{"aaaaaaa":{"flips":4},"machine":{"flips":5}}');
  keepMachineJson(reordered, '{"flips":4}');
  assert.equal(machineJsonOf(reordered), '{"flips":5}');
  // An envelope without a machine: none.
  assert.equal(machineJsonOf(recordOf(JSON.stringify({ view: {} }))), undefined);
});
