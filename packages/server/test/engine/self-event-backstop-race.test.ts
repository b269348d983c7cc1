// An event a machine sends itself has a backstop, a timer that delivers it should its node die
// before committing it (transition-commit.ts). A node that is alive but slow to commit it can
// lose the race to another node delivering the backstop: the event must still apply once, not
// once by the backstop and once more by its own commit, re-stepped on the moved instance.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { systemClock } from "../../src/engine/clock.js";
import type { Store, TransitionCommit } from "../../src/store/store.js";
import { ORG, startHarness, type Harness } from "../support/engine-harness.js";
import { overriding } from "../support/overriding-store.js";

const BACKSTOP_MS = 200;
const at = { orgId: ORG, machineName: "pinger", instanceName: "p" };
const alice = { sub: "alice" };

let dir: string;
let a: Harness;
let b: Harness;
/** Set once node A's commit of the pong is held back; resolves A's commit when called. */
let releasePong: (() => void) | undefined;

/**
 * Node A's store: its first commit of a pong waits until the test lets it go, and it claims no
 * timers (else A could claim the backstop itself, whose delivery then waits behind the pong).
 */
function holdingThePong(store: Store): Store {
  let held = false;
  return overriding(store, {
    claimDueTimers: () => Promise.resolve([]),
    nextTimerDue: () => Promise.resolve(undefined),
    commitTransition: async (commit: TransitionCommit) => {
      const event = JSON.parse(commit.transition.event) as { type: string };
      if (event.type === "pong" && !held) {
        held = true;
        await new Promise<void>((resolve) => (releasePong = resolve));
      }
      return store.commitTransition(commit);
    },
  });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "backstate-backstop-race-"));
  const options = { clock: systemClock, selfEventBackstopMs: BACKSTOP_MS };
  a = await startHarness({ ...options, wrapStore: holdingThePong }, dir);
  b = await startHarness(options, dir);
  await a.deploy("slow-pong-v5.js", "v5-import", at.machineName);
});
after(async () => {
  releasePong?.();
  await a.stop();
  await b.stop();
  rmSync(dir, { recursive: true, force: true });
});

test(
  "a self-sent event whose backstop another node delivered first is applied once",
  { timeout: 60_000 },
  async () => {
    await a.engine.createInstance({ ...at, authContext: alice });
    const ping = a.engine.sendEvent({
      ...at,
      event: { type: "ping", spinMs: 0 },
      authContext: alice,
    });
    // A has stepped the pong and holds its commit; B delivers the backstop once it is due.
    while (releasePong === undefined) await new Promise((resolve) => setTimeout(resolve, 10));
    await new Promise((resolve) => setTimeout(resolve, BACKSTOP_MS + 50));
    b.engine.wakeTimers();
    for (let i = 0; i < 200; i++) {
      const history = await b.store.listTransitions(at, { limit: 10 });
      if (history.some((t) => (JSON.parse(t.event) as { type: string }).type === "pong")) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const delivered = await b.store.listTransitions(at, { limit: 10 });
    assert.ok(
      delivered.some((t) => (JSON.parse(t.event) as { type: string }).type === "pong"),
      "node B delivered the backstop while A held its own commit of the pong",
    );
    releasePong();
    await ping;

    const history = await b.store.listTransitions(at, { limit: 10 });
    const pongs = history.filter((t) => (JSON.parse(t.event) as { type: string }).type === "pong");
    assert.equal(pongs.length, 1, "the pong is in the history once");
    assert.deepEqual(
      history.map((t) => (JSON.parse(t.event) as { type: string }).type),
      ["xstate.init", "ping", "pong"],
    );
  },
);
