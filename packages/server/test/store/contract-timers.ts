// Contract, part 4: durable timers. Armed (several under one key), cancelled and detached from
// their key by commits, deleted by their delivery, leased to one deliverer at a time, retried or
// dropped after a failed delivery.
import assert from "node:assert/strict";
import { test } from "node:test";
import { FEW_DUE_TIMERS } from "../../src/store/fair-timer-claims.js";
import {
  createInstance,
  eventCommit,
  instanceKey,
  seedMachine,
  timer,
  using,
  type ContractStore,
} from "./fixtures.js";

const LEASE = 30_000;

export function timerContract(open: () => Promise<ContractStore>): void {
  test("armed timers come due in order, with their instance's key", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a");
      const key = instanceKey("org_a", "i1");
      assert.equal(await store.nextTimerDue(), undefined);
      const id = await createInstance(store, key, {
        timersToArm: [timer("late", 3000), timer("early", 1000, '{"type":"tick"}')],
      });
      assert.equal(await store.nextTimerDue(), 1000);
      assert.deepEqual(await store.claimDueTimers(999, 10, LEASE), []);

      const [due, ...rest] = await store.claimDueTimers(1000, 10, LEASE);
      assert.deepEqual(rest, []);
      assert.ok(due);
      assert.deepEqual(
        { ...due, id: 0 },
        {
          id: 0,
          instanceId: id,
          instance: key,
          key: "early",
          dueAt: 1000,
          event: '{"type":"tick"}',
          attempts: 0,
          claimedUntil: 1000 + LEASE,
        },
      );
      assert.deepEqual(
        (await store.claimDueTimers(5000, 10, LEASE)).map((t) => t.key),
        ["late"],
      );
    }));

  test("claims respect the limit, earliest first", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a");
      await createInstance(store, instanceKey("org_a", "i1"), {
        timersToArm: [timer("c", 300), timer("a", 100), timer("b", 200)],
      });
      assert.deepEqual(
        (await store.claimDueTimers(1000, 2, LEASE)).map((t) => t.key),
        ["a", "b"],
      );
      assert.deepEqual(
        (await store.claimDueTimers(1000, 2, LEASE)).map((t) => t.key),
        ["c"],
      );
      assert.deepEqual(await store.claimDueTimers(1000, 2, LEASE), []);
    }));

  test("a transition cancels timers by key, of its own instance only", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a");
      const one = instanceKey("org_a", "one");
      const two = instanceKey("org_a", "two");
      const idOne = await createInstance(store, one, {
        timersToArm: [timer("t", 100), timer("keep", 200)],
      });
      await createInstance(store, two, { timersToArm: [timer("t", 150)] });
      await store.commitTransition(eventCommit(one, idOne, 1, { timersToCancel: ["t", "nope"] }));
      const due = await store.claimDueTimers(1000, 10, LEASE);
      assert.deepEqual(
        due.map((t) => [t.instance.instanceName, t.key]),
        [
          ["two", "t"],
          ["one", "keep"],
        ],
      );
    }));

  test("cancelTimers deletes timers by key outside a transition, of that instance only", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a");
      const one = instanceKey("org_a", "one");
      const two = instanceKey("org_a", "two");
      const idOne = await createInstance(store, one, {
        timersToArm: [timer("a", 100), timer("b", 200), timer("keep", 300)],
      });
      await createInstance(store, two, { timersToArm: [timer("a", 150)] });
      await store.cancelTimers(idOne, ["a", "b", "nope"]);
      await store.cancelTimers(idOne, []);
      const due = await store.claimDueTimers(1000, 10, LEASE);
      assert.deepEqual(
        due.map((t) => [t.instance.instanceName, t.key]),
        [
          ["two", "a"],
          ["one", "keep"],
        ],
      );
    }));

  test("a commit that delivers a timer by key deletes it, and is refused once it is gone", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a");
      const one = instanceKey("org_a", "one");
      const two = instanceKey("org_a", "two");
      const idOne = await createInstance(store, one, {
        timersToArm: [timer("backstop", 100), timer("keep", 200)],
      });
      await createInstance(store, two, { timersToArm: [timer("theirs", 100)] });
      // Another instance's timer of that key is not this instance's to deliver.
      await assert.rejects(
        store.commitTransition(eventCommit(one, idOne, 1, { deliveredTimerKey: "theirs" })),
        { code: "conflict" },
      );
      await store.commitTransition(eventCommit(one, idOne, 1, { deliveredTimerKey: "backstop" }));
      // Delivered once: a second delivery (its backstop's, or its own) is refused, writing nothing.
      await assert.rejects(
        store.commitTransition(eventCommit(one, idOne, 2, { deliveredTimerKey: "backstop" })),
        { code: "conflict" },
      );
      const history = await store.listTransitions(one, { limit: 10 });
      assert.equal(history.length, 2);
      const due = await store.claimDueTimers(1000, 10, LEASE);
      assert.deepEqual(
        due.map((t) => [t.instance.instanceName, t.key]),
        [
          ["two", "theirs"],
          ["one", "keep"],
        ],
      );
    }));

  test("a key armed again keeps its earlier timer; a cancel reaches only the one armed last", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a");
      const key = instanceKey("org_a", "i1");
      const id = await createInstance(store, key, { timersToArm: [timer("t", 100, '"first"')] });
      await store.commitTransition(
        eventCommit(key, id, 1, { timersToArm: [timer("t", 500, '"second"')] }),
      );
      await store.commitTransition(eventCommit(key, id, 2, { timersToArm: [timer("t", 300)] }));
      await store.commitTransition(eventCommit(key, id, 3, { timersToCancel: ["t"] }));
      // The second cancel finds no timer it reaches: the earlier ones were let go by the arms.
      await store.commitTransition(eventCommit(key, id, 4, { timersToCancel: ["t"] }));
      const due = await store.claimDueTimers(1000, 10, LEASE);
      assert.deepEqual(
        due.map((t) => [t.key, t.dueAt, t.event]),
        [
          ["t", 100, '"first"'],
          ["t", 500, '"second"'],
        ],
      );
    }));

  test("timers armed under one key in one commit all fire; a cancel reaches the last", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a");
      const key = instanceKey("org_a", "i1");
      const id = await createInstance(store, key, { timersToArm: [timer("t", 50, '"stored"')] });
      await store.commitTransition(
        eventCommit(key, id, 1, {
          timersToArm: [timer("t", 100, '"a"'), timer("t", 200, '"b"'), timer("t", 300, '"c"')],
        }),
      );
      await store.commitTransition(eventCommit(key, id, 2, { timersToCancel: ["t"] }));
      const due = await store.claimDueTimers(1000, 10, LEASE);
      assert.deepEqual(
        due.map((t) => t.event),
        ['"stored"', '"a"', '"b"'],
      );
    }));

  test("a detached timer fires but no cancel reaches it; a detach lets go of a key's timer", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a");
      const key = instanceKey("org_a", "i1");
      const id = await createInstance(store, key, {
        timersToArm: [timer("kept", 100), timer("let-go", 200)],
      });
      await store.commitTransition(
        eventCommit(key, id, 1, {
          timersToDetach: ["let-go", "nope"],
          timersToArm: [{ ...timer("kept", 300, '"detached"'), detached: true }],
        }),
      );
      await store.commitTransition(eventCommit(key, id, 2, { timersToCancel: ["let-go", "kept"] }));
      // Arming a detached timer let go of nothing, so the cancel took "kept"'s first timer.
      const due = await store.claimDueTimers(1000, 10, LEASE);
      assert.deepEqual(
        due.map((t) => [t.key, t.event]),
        [
          ["let-go", '{"type":"let-go"}'],
          ["kept", '"detached"'],
        ],
      );
      // A detached timer is delivered by its id as any other is.
      const [first] = due;
      assert.ok(first);
      await store.commitTransition(eventCommit(key, id, 3, { deliveredTimerId: first.id }));
      await assert.rejects(
        store.commitTransition(eventCommit(key, id, 4, { deliveredTimerId: first.id })),
        { code: "conflict" },
      );
    }));

  test("the delivering commit deletes its timer; another instance's timer id is a conflict and deletes nothing", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a");
      const one = instanceKey("org_a", "one");
      const two = instanceKey("org_a", "two");
      const idOne = await createInstance(store, one, {
        timersToArm: [timer("t", 100), timer("u", 200)],
      });
      await createInstance(store, two, { timersToArm: [timer("t", 300)] });
      const claimed = await store.claimDueTimers(1000, 10, LEASE);
      const [t, u, other] = claimed;
      assert.ok(t && u && other);
      assert.equal(other.instance.instanceName, "two");

      await store.commitTransition(eventCommit(one, idOne, 1, { deliveredTimerId: t.id }));
      // Instance one claims to deliver instance two's timer: refused, and the timer stays.
      await assert.rejects(
        store.commitTransition(eventCommit(one, idOne, 2, { deliveredTimerId: other.id })),
        { code: "conflict" },
      );
      // A timer delivered (or cancelled) already cannot be delivered again.
      await assert.rejects(
        store.commitTransition(eventCommit(one, idOne, 2, { deliveredTimerId: t.id })),
        { code: "conflict" },
      );
      // Leases lapse; whatever was not delivered comes back.
      const left = await store.claimDueTimers(1000 + LEASE, 10, LEASE);
      assert.deepEqual(
        left.map((timer) => timer.id),
        [u.id, other.id],
      );
    }));

  test("a claim leases a timer: nobody else gets it until the lease lapses", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a");
      await createInstance(store, instanceKey("org_a", "i1"), { timersToArm: [timer("t", 100)] });
      const [first] = await store.claimDueTimers(100, 10, LEASE);
      assert.ok(first);
      assert.deepEqual(await store.claimDueTimers(100, 10, LEASE), []);
      assert.deepEqual(await store.claimDueTimers(100 + LEASE - 1, 10, LEASE), []);
      // The next moment a claim can find it is the end of the lease.
      assert.equal(await store.nextTimerDue(), 100 + LEASE);
      const [again] = await store.claimDueTimers(100 + LEASE, 10, LEASE);
      assert.equal(again?.id, first.id);
      assert.equal(again?.attempts, 0);
    }));

  test("a failed delivery is retried later with its attempt counted, or dropped", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a");
      await createInstance(store, instanceKey("org_a", "i1"), {
        timersToArm: [timer("retry", 100), timer("drop", 100)],
      });
      const claimed = await store.claimDueTimers(100, 10, LEASE);
      const retry = claimed.find((t) => t.key === "retry");
      const drop = claimed.find((t) => t.key === "drop");
      assert.ok(retry && drop);

      await store.recordTimerFailure(retry, 5000, false);
      await store.recordTimerFailure(drop, 5000, true);
      // The failure cleared the lease: the retry time alone decides.
      assert.equal(await store.nextTimerDue(), 5000);
      assert.deepEqual(await store.claimDueTimers(4999, 10, LEASE), []);
      const [again] = await store.claimDueTimers(5000, 10, LEASE);
      assert.ok(again);
      assert.deepEqual([again.id, again.attempts, again.dueAt], [retry.id, 1, 5000]);
      await store.recordTimerFailure(again, 6000, false);
      assert.equal((await store.claimDueTimers(6000, 10, LEASE))[0]?.attempts, 2);
      const everything = await store.claimDueTimers(Number.MAX_SAFE_INTEGER - LEASE, 10, LEASE);
      assert.deepEqual(
        everything.map((t) => t.id),
        [retry.id],
        "the dropped timer is gone",
      );
    }));

  test("a claim's lease is at least 1 ms, so that no two claims of a timer share its end", () =>
    using(open, async (store) => {
      for (const leaseMs of [0, -1, 1.5]) {
        await assert.rejects(store.claimDueTimers(100, 10, leaseMs), TypeError, String(leaseMs));
      }
    }));

  test("a failure recorded after the lease lapsed and another claimed the timer changes nothing", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a");
      await createInstance(store, instanceKey("org_a", "i1"), {
        timersToArm: [timer("slow", 100)],
      });
      // The first claimer's delivery outlives its lease, and a second claimer takes the timer.
      const [first] = await store.claimDueTimers(100, 10, LEASE);
      const [second] = await store.claimDueTimers(100 + LEASE, 10, LEASE);
      assert.ok(first && second);
      assert.equal(second.id, first.id);
      assert.notEqual(second.claimedUntil, first.claimedUntil);
      // The first gives up (its last attempt), then fails once more: neither drops the timer
      // nor lifts the second's lease.
      await store.recordTimerFailure(first, 5000, true);
      await store.recordTimerFailure(first, 5000, false);
      assert.equal(await store.nextTimerDue(), second.claimedUntil);
      assert.deepEqual(await store.claimDueTimers(second.claimedUntil - 1, 10, LEASE), []);
      // Its own claimer may still record its failure: the timer comes back, attempt counted.
      await store.recordTimerFailure(second, 9000, false);
      const [third] = await store.claimDueTimers(9000, 10, LEASE);
      assert.deepEqual(third && [third.id, third.attempts], [first.id, 1]);
    }));

  test("one org's backlog of due timers does not hold back another org's due timer", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_busy");
      await seedMachine(store, "org_quiet");
      // The busy org's timers came due long before the quiet org's, and fill any one claim.
      for (let i = 0; i < 4; i += 1) {
        await createInstance(store, instanceKey("org_busy", `i${i}`), {
          timersToArm: Array.from({ length: 10 }, (_, n) => timer(`t${n}`, 100 + i * 10 + n)),
        });
      }
      await createInstance(store, instanceKey("org_quiet", "q"), {
        timersToArm: [timer("t", 900)],
      });
      const claimed = await store.claimDueTimers(1000, 5, LEASE);
      assert.equal(claimed.length, 5);
      assert.ok(
        claimed.some((t) => t.instance.orgId === "org_quiet"),
        "the quiet org's due timer is in the first claim",
      );
      // Within an org, earliest due first.
      assert.deepEqual(
        claimed.filter((t) => t.instance.orgId === "org_busy").map((t) => t.dueAt),
        [100, 101, 102, 103],
      );
    }));

  // With that many due timers a claim no longer ranks only the orgs of the due timers it read
  // first (fair-timer-claims.ts): the quiet org's timer is behind the whole backlog.
  test("a backlog too large to read whole still leaves room for another org's due timer", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_busy");
      await seedMachine(store, "org_quiet");
      const perInstance = 256;
      for (let i = 0; i * perInstance < FEW_DUE_TIMERS; i += 1) {
        await createInstance(store, instanceKey("org_busy", `i${i}`), {
          timersToArm: Array.from({ length: perInstance }, (_, n) =>
            timer(`t${n}`, 100 + i * perInstance + n),
          ),
        });
      }
      await createInstance(store, instanceKey("org_quiet", "q"), {
        timersToArm: [timer("t", 100 + FEW_DUE_TIMERS + 1)],
      });
      const claimed = await store.claimDueTimers(100_000, 3, LEASE);
      assert.deepEqual(
        claimed.map((t) => [t.instance.orgId, t.dueAt]),
        [
          ["org_busy", 100],
          ["org_busy", 101],
          ["org_quiet", 100 + FEW_DUE_TIMERS + 1],
        ],
      );
    }));

  test("orgs whose timers are not due yet take no turn", () =>
    using(open, async (store) => {
      for (const org of ["org_a", "org_b", "org_c"]) await seedMachine(store, org);
      await createInstance(store, instanceKey("org_a", "a"), {
        timersToArm: [timer("a0", 100), timer("a1", 101), timer("later", 5_000)],
      });
      await createInstance(store, instanceKey("org_b", "b"), {
        timersToArm: [timer("later", 5_000)],
      });
      await createInstance(store, instanceKey("org_c", "c"), { timersToArm: [timer("c0", 300)] });
      const claimed = await store.claimDueTimers(1000, 10, LEASE);
      assert.deepEqual(
        claimed.map((t) => t.key),
        ["a0", "a1", "c0"],
      );
    }));

  test("orgs take turns at due timers, the one with fewer under lease first, even one claim at a time", () =>
    using(open, async (store) => {
      await seedMachine(store, "org_a");
      await seedMachine(store, "org_b");
      await createInstance(store, instanceKey("org_a", "a"), {
        timersToArm: Array.from({ length: 6 }, (_, n) => timer(`a${n}`, 100 + n)),
      });
      await createInstance(store, instanceKey("org_b", "b"), {
        timersToArm: [timer("b0", 500), timer("b1", 501)],
      });
      const order: string[] = [];
      for (let i = 0; i < 6; i += 1) {
        const [one, ...more] = await store.claimDueTimers(1000, 1, LEASE);
        assert.ok(one);
        assert.deepEqual(more, []);
        order.push(one.key);
      }
      // On a tie (as many under lease), the earlier due goes first.
      assert.deepEqual(order, ["a0", "b0", "a1", "b1", "a2", "a3"]);

      // Leases that lapsed count no more: all are claimable again, and a claim with room for
      // them all takes them all (listed earliest due first).
      const claimed = await store.claimDueTimers(1000 + LEASE, 10, LEASE);
      assert.deepEqual(
        claimed.map((t) => t.key),
        ["a0", "a1", "a2", "a3", "a4", "a5", "b0", "b1"],
      );
    }));
}
