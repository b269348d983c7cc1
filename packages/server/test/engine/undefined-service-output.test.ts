// A promise that returns nothing (or rejects with nothing) gives its done (error) event an
// undefined output (error), in XState 5 and 4 alike: the engine made it null, which a machine
// tells apart (`=== undefined`) and which an assign of it keeps in the context, where XState's
// snapshot leaves the field out. The instance must end as a plain XState actor does.
import assert from "node:assert/strict";
import { test } from "node:test";
import { systemClock } from "../../src/engine/clock.js";
import type { BundleStyle } from "../support/bundles.js";
import { ORG, startHarness } from "../support/engine-harness.js";
import { runInMemory } from "../support/in-memory-machine.js";

for (const [style, generation, fixture] of [
  ["v5-import", 5, "undefined-output-v5.js"],
  ["v4-cli", 4, "undefined-output-v4.js"],
] as Array<[BundleStyle, 4 | 5, string]>) {
  test(`a service's undefined output or error stays undefined (${style})`, async () => {
    const memory = await runInMemory(fixture, generation);
    for (const type of ["run", "fail"]) await memory.send({ type });
    const expected = JSON.parse(JSON.stringify(memory.observe().context)) as unknown;
    memory.stop();
    assert.deepEqual(
      expected,
      { seen: ["output undefined", "error undefined"] },
      "XState's own actor",
    );

    const h = await startHarness({ clock: systemClock });
    try {
      const machineName = await h.deploy(fixture, style, "undefined-output");
      const at = { orgId: ORG, machineName, instanceName: "one" };
      await h.engine.createInstance({ ...at, authContext: {} });
      for (const event of ["run", "fail"])
        await h.engine.sendEvent({ ...at, event, authContext: {} });
      assert.deepEqual((await h.engine.inspectInstance(at)).context, expected);
    } finally {
      await h.dispose();
    }
  });
}
