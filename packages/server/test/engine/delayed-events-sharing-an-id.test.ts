// Delayed events scheduled under one id while one is pending: XState keeps them all (each is
// delivered) and a cancel of the id reaches the one scheduled last; in XState 5, a delivery under
// the id makes it forget the id, so a cancel after it reaches none. The engine kept only the last
// one armed. Each sequence runs on an engine instance and on a plain XState actor, both on a
// simulated clock, and what each delivered must agree.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ManualClock } from "../../src/engine/clock.js";
import type { BundleStyle } from "../support/bundles.js";
import { ORG, startHarness, type Harness } from "../support/engine-harness.js";
import { runInMemory } from "../support/in-memory-machine.js";

type Op = string | number;

const SEQUENCES: Op[][] = [
  ["a", "b"],
  ["a", "b", "cancel"],
  ["a", "b", 150, "cancel"],
  ["a", "c", 60, "cancel"],
  ["b", "a", 150, "cancel"],
  ["armTwice"],
  ["a", "armTwice", "cancel"],
  ["a", "armTwiceCancel", "cancel"],
  ["a", "armCancel", "cancel"],
  ["a", "cancelArm", "cancel"],
  ["a", "armCancel", "b", "cancel"],
];

const CASES: Array<{ style: BundleStyle; generation: 4 | 5; fixture: string }> = [
  { style: "v5-import", generation: 5, fixture: "shared-delay-id-v5.js" },
  { style: "v4-cli", generation: 4, fixture: "shared-delay-id-v4.js" },
];

for (const { style, generation, fixture } of CASES) {
  describe(`delayed events sharing an id (${style})`, () => {
    const clock = new ManualClock();
    let h: Harness;
    let machineName: string;
    before(async () => {
      h = await startHarness({ clock });
      machineName = await h.deploy(fixture, style, "shared-delay-id");
    });
    after(() => h.dispose());

    for (const [index, ops] of SEQUENCES.entries()) {
      test(`${ops.join(" ")}: delivered as XState delivers them`, async () => {
        const memory = await runInMemory(fixture, generation);
        const at = { orgId: ORG, machineName, instanceName: `seq-${index}` };
        try {
          await h.engine.createInstance({ ...at, authContext: {} });
          // In steps shorter than any delay, so each fires at its own time on both clocks.
          const advance = async (ms: number) => {
            for (let t = 0; t < ms; t += 10) {
              await memory.advance(10);
              clock.advance(10);
              await h.engine.timersIdle();
            }
          };
          for (const op of ops) {
            if (typeof op === "number") await advance(op);
            else {
              await memory.send({ type: op });
              await h.engine.sendEvent({ ...at, event: op, authContext: {} });
            }
          }
          await advance(300);
          const expected = (memory.observe().context as { got: number[] }).got;
          const actual = ((await h.engine.inspectInstance(at)).context as { got: number[] }).got;
          assert.deepEqual(actual, expected);
        } finally {
          memory.stop();
        }
      });
    }
  });
}
