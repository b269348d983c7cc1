// A sandbox process keeps each machine version it ran in a context of its own (the bundle and its
// own XState). Without a bound, every version ever uploaded, checked or run stayed there until the
// process ended: a server whose machines were redeployed all day grew its sandboxes until the
// memory check killed them, with the calls and services they held. The pool now drops the least
// recently used versions past maxVersionsPerProcess, unless something of them still lives there.
import assert from "node:assert/strict";
import { afterEach, describe, test } from "node:test";
import type { SandboxNotification } from "../../src/runtime/sandbox-contract.js";
import { SandboxPool } from "../../src/runtime/sandbox-pool.js";
import { callExport, memoryLogger, target, TEST_ADAPTER, waitFor } from "./sandbox-helpers.js";

// Module state lives in the version's context: a count that starts again means a fresh context.
const COUNTER = `
export default { id: "counter" };
let count = 0;
export const bump = () => ++count;
`;

describe("SandboxPool version unloading", () => {
  let pool: SandboxPool | undefined;
  afterEach(() => pool?.close());

  test("drops the least recently used version past the limit, and loads it again when called", async () => {
    pool = new SandboxPool({ adapterPath: TEST_ADAPTER, size: 1, maxVersionsPerProcess: 2 });
    const [a, b, c] = [1, 2, 3].map(() => target("org_a", COUNTER));
    assert.equal(await callExport(pool, a!, "bump"), 1);
    assert.equal(await callExport(pool, a!, "bump"), 2);
    assert.equal(await callExport(pool, b!, "bump"), 1);
    assert.equal(await callExport(pool, c!, "bump"), 1); // a third version: a, least recent, goes

    assert.equal(await callExport(pool, a!, "bump"), 1, "a's context was dropped");
    assert.equal(a!.loads, 2, "a's code was sent again");
    assert.equal(pool.stats.live, 1, "the same process: nothing was killed");
    assert.equal(pool.stats.protocolErrors, 0);
  });

  test("keeps the versions in use and the ones something still lives in", async () => {
    const logger = memoryLogger();
    pool = new SandboxPool({
      adapterPath: TEST_ADAPTER,
      size: 1,
      maxVersionsPerProcess: 1,
      logger,
    });
    const notifications: SandboxNotification[] = [];
    pool.onNotification((notification) => notifications.push(notification));
    const [busy, other] = [1, 2].map(() => target("org_a", COUNTER));
    assert.equal(await callExport(pool, busy!, "bump"), 1);
    // Something of `busy` lives on in the sandbox: it must survive the unload that `other` asks.
    await pool.call(busy!, "start-async", JSON.stringify({ delayMs: 500, tag: "later" }));
    assert.equal(await callExport(pool, other!, "bump"), 1);
    assert.equal(await callExport(pool, busy!, "bump"), 2, "busy's context was kept");
    assert.equal(busy!.loads, 1);

    await waitFor(() => notifications.length === 1, "the late notification");
    assert.equal(notifications[0]?.versionId, busy!.versionId);
    assert.equal(pool.stats.protocolErrors, 0, "the kept version's notification was expected");

    // Nothing lives in either now: past the limit, the least recently used one goes.
    const third = target("org_a", COUNTER);
    assert.equal(await callExport(pool, third, "bump"), 1);
    assert.equal(await callExport(pool, other!, "bump"), 1, "other's context was dropped");
    assert.equal(other!.loads, 2);
  });

  test("a dropped version's own timers stop with it", async () => {
    const logger = memoryLogger();
    pool = new SandboxPool({
      adapterPath: TEST_ADAPTER,
      size: 1,
      maxVersionsPerProcess: 1,
      logger,
    });
    // A timer of machine code's own, at load: no step or service of the adapter's owns it.
    const ticking = target(
      "org_a",
      `export default {}; setInterval(() => console.log("tick"), 20); export const ok = () => "ok";`,
    );
    const ticks = () =>
      logger.entries.filter((entry) => entry.fields?.versionId === ticking.versionId).length;
    assert.equal(await callExport(pool, ticking, "ok"), "ok");
    await waitFor(() => ticks() > 0, "a tick");
    assert.equal(await callExport(pool, target("org_a", COUNTER), "bump"), 1); // ticking goes
    await new Promise((resolve) => setTimeout(resolve, 200));
    const atDrop = ticks();
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(ticks(), atDrop, "the dropped version's interval still runs");
  });

  test("never drops a version in the middle of one of its calls", async () => {
    pool = new SandboxPool({ adapterPath: TEST_ADAPTER, size: 1, maxVersionsPerProcess: 1 });
    const slow = target(
      "org_a",
      `export default {}; let count = 0;
       export const later = (ms) => new Promise((r) => setTimeout(() => r(++count), ms));`,
    );
    const quick = target("org_a", COUNTER);
    const running = callExport(pool, slow, "later", [300]);
    assert.equal(await callExport(pool, quick, "bump"), 1);
    assert.equal(await running, 1);
    assert.equal(await callExport(pool, slow, "later", [0]), 2, "slow's context was kept");
  });
});
