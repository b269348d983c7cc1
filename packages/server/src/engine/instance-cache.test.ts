import assert from "node:assert/strict";
import { test } from "node:test";
import type { InstanceRecord } from "../store/store.js";
import { InstanceCache, unchanged } from "./instance-cache.js";

function record(instanceName: string, extra: Partial<InstanceRecord> = {}): InstanceRecord {
  return {
    orgId: "org_1",
    machineName: "m",
    instanceName,
    id: 1,
    machineVersionId: "ver_1",
    snapshot: "{}",
    status: "running",
    sequence: 1,
    pendingServices: [],
    createdAt: 0,
    updatedAt: 0,
    ...extra,
  };
}

const roomy = { maxEntries: 100, maxSnapshotChars: 1_000_000 };

test("remembers the last record per instance, and forgets it when told", () => {
  const cache = new InstanceCache(roomy);
  const first = record("a");
  const second = record("a", { sequence: 2 });
  cache.remember(first);
  cache.remember(second);
  assert.equal(cache.get(first), second);
  assert.equal(cache.size, 1);
  cache.forget(first);
  assert.equal(cache.get(first), undefined);
});

test("the least recently used instance goes first when there are too many", () => {
  const cache = new InstanceCache({ ...roomy, maxEntries: 2 });
  const [a, b, c] = [record("a"), record("b"), record("c")];
  cache.remember(a);
  cache.remember(b);
  cache.get(a);
  cache.remember(c);
  assert.equal(cache.get(b), undefined, "b was used least recently");
  assert.equal(cache.get(a), a);
  assert.equal(cache.get(c), c);
});

test("snapshots are bounded in characters too; one larger than the bound is not kept", () => {
  const cache = new InstanceCache({ maxEntries: 100, maxSnapshotChars: 10 });
  const a = record("a", { snapshot: "x".repeat(6) });
  const b = record("b", { snapshot: "x".repeat(6) });
  cache.remember(a);
  cache.remember(b);
  assert.equal(cache.get(a), undefined);
  assert.equal(cache.get(b), b);
  cache.remember(record("c", { snapshot: "x".repeat(11) }));
  assert.equal(cache.get(record("c")), undefined);
  assert.equal(cache.get(b), b, "a record too large to keep drops nothing else");
  cache.forget(b);
  cache.remember(record("d", { snapshot: "x".repeat(10) }));
  assert.equal(cache.size, 1, "forgetting gave its characters back");
});

test("size 0 remembers nothing", () => {
  const cache = new InstanceCache({ ...roomy, maxEntries: 0 });
  cache.remember(record("a"));
  assert.equal(cache.get(record("a")), undefined);
});

test("a paused instance is not remembered: a resume elsewhere would not show", () => {
  const cache = new InstanceCache(roomy);
  cache.remember(record("a"));
  cache.remember(record("a", { status: "paused" }));
  assert.equal(cache.get(record("a")), undefined);
});

test("another node's commit drops only records older than it", () => {
  const cache = new InstanceCache(roomy);
  const a = record("a", { sequence: 5 });
  cache.remember(a);
  cache.forgetBefore(a, 5);
  assert.equal(cache.get(a), a, "this node's own commit, announced");
  cache.forgetBefore(a, 6);
  assert.equal(cache.get(a), undefined);
});

test("unchanged: the same id, sequence, status and pending services", () => {
  const a = record("a", { pendingServices: ["s1", "s2"] });
  assert.ok(unchanged(a, { ...a, snapshot: "other", updatedAt: 5 }));
  assert.ok(!unchanged(a, { ...a, id: 2 }));
  assert.ok(!unchanged(a, { ...a, sequence: 2 }));
  assert.ok(!unchanged(a, { ...a, status: "paused" }));
  assert.ok(!unchanged(a, { ...a, pendingServices: ["s1"] }));
  assert.ok(!unchanged(a, { ...a, pendingServices: ["s2", "s1"] }));
});
