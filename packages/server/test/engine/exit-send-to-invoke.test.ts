// A state's exit action that sends to the child the state invokes (sendTo("kid") with invoke
// { id: "kid" }) reaches that child, as in XState's own actor: XState 5 runs the exit actions
// before it stops the state's children, and XState 4 resolves the send to the child before the
// stop. The engine stopped the child first, and the event was lost. The child writes each event
// it gets to the machine console; the lines must be those a plain XState actor's child writes.
import assert from "node:assert/strict";
import { mock, test } from "node:test";
import { systemClock } from "../../src/engine/clock.js";
import type { BundleStyle } from "../support/bundles.js";
import { ORG, startHarness } from "../support/engine-harness.js";
import { runInMemory } from "../support/in-memory-machine.js";

// At creation and after "back", the state's child says it is ready, which leaves the state.
const EVENTS = ["back"];
const KID_LINE = /kid got (\w+)/;

for (const [style, generation, fixture] of [
  ["v5-import", 5, "exit-send-v5.js"],
  ["v4-cli", 4, "exit-send-v4.js"],
] as Array<[BundleStyle, 4 | 5, string]>) {
  test(`an exit sendTo the state's own invoke reaches the child (${style})`, async () => {
    const printed = mock.method(console, "log", () => {});
    let expected: string[];
    let expectedHeard: unknown;
    try {
      const memory = await runInMemory(fixture, generation);
      for (const type of EVENTS) await memory.send({ type });
      expectedHeard = (memory.observe().context as { heard: unknown }).heard;
      memory.stop();
      expected = printed.mock.calls.flatMap((call) => {
        const match = KID_LINE.exec(String(call.arguments[0]));
        return match ? [match[1]!] : [];
      });
    } finally {
      printed.mock.restore();
    }
    assert.deepEqual(expected, ["bye", "bye"], "XState's own actor");

    const h = await startHarness({ clock: systemClock, settleTimeoutMs: 2_000 });
    try {
      const machineName = await h.deploy(fixture, style, "exit-send");
      const at = { orgId: ORG, machineName, instanceName: "one" };
      await h.engine.createInstance({ ...at, authContext: {} });
      for (const event of EVENTS) await h.engine.sendEvent({ ...at, event, authContext: {} });
      // The child's console lines come to the server's log on their own way: waited for.
      let got: string[] = [];
      for (let i = 0; i < 100 && got.length < expected.length; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        got = h.logs.flatMap((line) => {
          const match = KID_LINE.exec(line.message);
          return line.message.startsWith("machine console:") && match ? [match[1]!] : [];
        });
      }
      assert.deepEqual(got, expected);
      // What the child echoes as it is stopped reaches XState 5's actor, not the instance (a
      // gap the README owns); XState 4's drops it too, so there the contexts agree.
      if (generation === 4) {
        assert.deepEqual((await h.engine.inspectInstance(at)).context, { heard: expectedHeard });
      }
    } finally {
      await h.dispose();
    }
  });
}
