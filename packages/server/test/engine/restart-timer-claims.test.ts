// A server that crashed left the timers it had claimed under their claim's lease. On SQLite the
// next server to claim the data dir knows it is the only process on the file: those claims are
// of a process that is gone, and their timers fire at once instead of when the lease runs out.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { openBackstate } from "../../src/backstate.js";
import { ManualClock } from "../../src/engine/clock.js";
import { openSqliteStore } from "../../src/store/sqlite/index.js";
import type { Store } from "../../src/store/store.js";
import { createInstance, instanceKey, seedMachine, T0, timer } from "../store/fixtures.js";
import { overriding } from "../support/overriding-store.js";

const LEASE = 10_000;

/** The data dir as a server that crashed while delivering its one timer left it. */
async function crashedWithATimerClaimed(dataDir: string): Promise<number> {
  const store = openSqliteStore({ path: join(dataDir, "backstate.db") });
  try {
    await store.migrate();
    await seedMachine(store, "org_a");
    await createInstance(store, instanceKey("org_a", "i1"), { timersToArm: [timer("t", T0)] });
    const [claimed] = await store.claimDueTimers(T0, 10, LEASE);
    assert.ok(claimed);
    return claimed.id;
  } finally {
    await store.close();
  }
}

/** The store, noting the ids of the timers each claim took. */
function notingClaims(claimed: number[]): (store: Store) => Store {
  return (store) =>
    overriding(store, {
      claimDueTimers: async (...args: Parameters<Store["claimDueTimers"]>) => {
        const timers = await store.claimDueTimers(...args);
        claimed.push(...timers.map((t) => t.id));
        return timers;
      },
    });
}

async function until(condition: () => boolean): Promise<boolean> {
  for (let i = 0; i < 200 && !condition(); i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return condition();
}

test("a restart on the claimed data dir fires at once the timers a crashed server had claimed", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "backstate-restart-timers-"));
  try {
    const timerId = await crashedWithATimerClaimed(dataDir);
    // Restarted a moment later: the crashed server's lease has most of its 10 s left.
    const clock = new ManualClock(T0 + 1);
    const claimed: number[] = [];
    const node = await openBackstate({
      dataDir,
      claimDataDir: true,
      clock,
      timerLeaseMs: LEASE,
      wrapStore: notingClaims(claimed),
      sandboxes: { size: 1 },
    });
    try {
      assert.ok(
        await until(() => claimed.includes(timerId)),
        "the timer is claimed again without waiting out the old lease",
      );
    } finally {
      await node.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("without the data dir's claim (several engines on one file), another's claims are kept", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "backstate-restart-timers-"));
  try {
    await crashedWithATimerClaimed(dataDir);
    const node = await openBackstate({
      dataDir,
      clock: new ManualClock(T0 + 1),
      timerLeaseMs: LEASE,
      sandboxes: { size: 1 },
    });
    try {
      assert.equal(await node.store.nextTimerDue(), T0 + LEASE, "still leased to the other");
    } finally {
      await node.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
