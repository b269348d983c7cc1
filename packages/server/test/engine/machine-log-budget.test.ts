// What machine code makes the server log is held to MACHINE_LOG_BUDGET (100 lines a second, a
// burst of 200): its console output (per sandbox process), and the lines the adapter reports for
// it, such as an action that threw (per org). One event that throws in 5,000 actions used to put
// 5,000 lines of 8 KB in the server's log.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { systemClock } from "../../src/engine/clock.js";
import { MACHINE_LOG_BUDGET } from "../../src/runtime/log-budget.js";
import { ORG, startHarness, type Harness } from "../support/engine-harness.js";

const alice = { sub: "alice" };
const where = { orgId: ORG, machineName: "logs", instanceName: "l1" };
// The burst, and what the budget earns back while the lines come in and are counted.
const MOST = MACHINE_LOG_BUDGET.burst + 2 * MACHINE_LOG_BUDGET.perSecond;
let h: Harness;

before(async () => {
  h = await startHarness({ clock: systemClock });
  await h.deploy("log-flood-v5.js", "v5-import", "logs");
  await h.engine.createInstance({ ...where, authContext: alice });
});
after(() => h.dispose());

/**
 * The lines starting with `prefix` logged while one `type` event runs 5,000 actions, and a
 * second later one more: the budget has earned a line back by then, which tells how many were
 * dropped.
 */
async function linesOf(type: string, prefix: string) {
  const before = h.logs.length;
  await h.engine.sendEvent({ ...where, event: { type, count: 5000 }, authContext: alice });
  await new Promise((resolve) => setTimeout(resolve, 1000));
  await h.engine.sendEvent({ ...where, event: { type, count: 1 }, authContext: alice });
  await new Promise((resolve) => setTimeout(resolve, 200));
  return h.logs.slice(before).filter((line) => line.message.startsWith(prefix));
}

test("console lines from one event are held to the log budget", async () => {
  const lines = await linesOf("consoleMany", "machine console:");
  assert.ok(lines.length >= MACHINE_LOG_BUDGET.burst / 2, `${lines.length} lines`);
  assert.ok(lines.length <= MOST, `${lines.length} lines`);
});

test("lines the adapter reports (actions that threw) are held to the log budget too", async () => {
  const lines = await linesOf("throwMany", "machine log:");
  assert.ok(lines.length >= MACHINE_LOG_BUDGET.burst / 2, `${lines.length} lines`);
  assert.ok(lines.length <= MOST, `${lines.length} lines`);
  assert.ok(
    lines.some((line) => / lines dropped, over \d+ a second/.test(line.message)),
    "the lines dropped are counted in the log",
  );
});

test("every line of a flood that nothing follows is logged or counted", async () => {
  for (const [type, prefix] of [
    ["throwMany", "machine log:"],
    ["consoleMany", "machine console:"],
  ] as const) {
    const before = h.logs.length;
    await h.engine.sendEvent({ ...where, event: { type, count: 5000 }, authContext: alice });
    // No later line tells the last drops: the budget's own report does, a second after the
    // first of them.
    const accounted = () => {
      let total = 0;
      for (const { message } of h.logs.slice(before)) {
        if (!message.startsWith(prefix)) continue;
        const dropped = / (\d+) lines dropped, over \d+ a second/.exec(message)?.[1];
        total += dropped === undefined ? 1 : Number(dropped);
      }
      return total;
    };
    const deadline = Date.now() + 10_000;
    while (accounted() < 5000) {
      assert.ok(Date.now() < deadline, `${type}: ${accounted()} of 5,000 lines accounted for`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(accounted(), 5000, type);
  }
});
