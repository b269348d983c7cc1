import assert from "node:assert/strict";
import { test } from "node:test";
import { ServiceEventBacklog } from "./service-event-backlog.js";

test("events a running service sends wait up to the bound; past it they are dropped, logged once", () => {
  const backlog = new ServiceEventBacklog({ maxEvents: 2, maxChars: 100 });
  assert.deepEqual(backlog.admit("a", 10, false), { admitted: true, firstDrop: false });
  assert.deepEqual(backlog.admit("a", 10, false), { admitted: true, firstDrop: false });
  assert.deepEqual(backlog.admit("a", 10, false), { admitted: false, firstDrop: true });
  assert.deepEqual(backlog.admit("a", 10, false), { admitted: false, firstDrop: false });
  // Another instance has a backlog of its own.
  assert.deepEqual(backlog.admit("b", 10, false), { admitted: true, firstDrop: false });
  // An event that ends its service's run always goes.
  assert.deepEqual(backlog.admit("a", 10, true), { admitted: true, firstDrop: false });
  for (let i = 0; i < 3; i++) backlog.release("a", 10);
  // Emptied: the next flood is logged again.
  assert.deepEqual(backlog.admit("a", 10, false), { admitted: true, firstDrop: false });
  assert.deepEqual(backlog.admit("a", 10, false), { admitted: true, firstDrop: false });
  assert.deepEqual(backlog.admit("a", 10, false), { admitted: false, firstDrop: true });
});

test("characters count as well as events", () => {
  const backlog = new ServiceEventBacklog({ maxEvents: 100, maxChars: 100 });
  assert.equal(backlog.admit("a", 60, false).admitted, true);
  assert.equal(backlog.admit("a", 60, false).admitted, false);
  backlog.release("a", 60);
  assert.equal(backlog.admit("a", 60, false).admitted, true);
  // One event larger than the whole bound, with nothing waiting: dropped, and nothing kept.
  const empty = new ServiceEventBacklog({ maxEvents: 100, maxChars: 100 });
  assert.deepEqual(empty.admit("z", 500, false), { admitted: false, firstDrop: true });
  assert.deepEqual(empty.admit("z", 50, false), { admitted: true, firstDrop: false });
});
