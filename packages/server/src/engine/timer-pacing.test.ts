import assert from "node:assert/strict";
import { test } from "node:test";
import { TimerPacing } from "./timer-pacing.js";

const T0 = 1_000_000;

test("an instance within its burst is not paced", () => {
  const pacing = new TimerPacing({ burst: 3, perSecond: 10 });
  assert.equal(pacing.notBefore("a", T0), undefined, "never charged");
  pacing.charge("a", 2, T0);
  assert.equal(pacing.notBefore("a", T0), undefined);
});

test("once the burst is spent, new timers wait for the budget to refill", () => {
  const pacing = new TimerPacing({ burst: 3, perSecond: 10 });
  pacing.charge("a", 3, T0);
  assert.equal(pacing.notBefore("a", T0), T0 + 100, "one transition's worth: 100 ms at 10/s");
  pacing.charge("a", 5, T0);
  assert.equal(pacing.notBefore("a", T0), T0 + 600, "a deficit of 5 takes 600 ms to pay back");
  assert.equal(pacing.notBefore("a", T0 + 600), undefined, "paid back");
  assert.equal(pacing.notBefore("b", T0), undefined, "other instances keep their own budget");
});

test("the budget refills at the steady rate, up to the burst", () => {
  const pacing = new TimerPacing({ burst: 3, perSecond: 10 });
  pacing.charge("a", 3, T0);
  // A long quiet spell refills the budget to the burst, not beyond.
  pacing.charge("a", 3, T0 + 60_000);
  assert.equal(pacing.notBefore("a", T0 + 60_000), T0 + 60_000 + 100);
  // A ticker at the refill rate never runs dry.
  const ticker = new TimerPacing({ burst: 2, perSecond: 10 });
  for (let i = 0; i < 1_000; i++) {
    ticker.charge("t", 1, T0 + i * 100);
    assert.equal(ticker.notBefore("t", T0 + i * 100), undefined, `tick ${i}`);
  }
});

test("the instances remembered are bounded; the least recently charged go first", () => {
  const pacing = new TimerPacing({ burst: 1, perSecond: 1 });
  for (let i = 0; i <= 10_000; i++) pacing.charge(`i${i}`, 1, T0);
  assert.equal(pacing.tracked, 10_000);
  assert.equal(pacing.notBefore("i0", T0), undefined, "the first was forgotten");
  assert.equal(pacing.notBefore("i10000", T0), T0 + 1000);
  assert.equal(pacing.notBefore("i1", T0), T0 + 1000);
});

test("a budget full again is forgotten: it is remembered only while it matters", () => {
  const pacing = new TimerPacing({ burst: 3, perSecond: 10 });
  pacing.charge("gone", 1, T0); // an instance whose timer fired once, say, before it was deleted
  pacing.charge("spent", 3, T0);
  pacing.charge("busy", 6, T0 + 50);
  assert.equal(pacing.tracked, 3, "none is full again yet");
  // By T0 + 300 "spent" has refilled to 3; "gone" was full again at T0 + 100.
  pacing.charge("other", 1, T0 + 300);
  assert.equal(pacing.tracked, 2, "only the budgets still short are remembered");
  assert.equal(pacing.notBefore("busy", T0 + 300), T0 + 300 + 150, "a short one is kept");
});

test("nonsense limits are refused", () => {
  assert.throws(() => new TimerPacing({ burst: 0, perSecond: 1 }), TypeError);
  assert.throws(() => new TimerPacing({ burst: 1.5, perSecond: 1 }), TypeError);
  assert.throws(() => new TimerPacing({ burst: 1, perSecond: 0 }), TypeError);
  assert.throws(() => new TimerPacing({ burst: 1, perSecond: Number.NaN }), TypeError);
});
