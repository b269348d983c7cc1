import assert from "node:assert/strict";
import { test } from "node:test";
import { WaitingCalls } from "./waiting-calls.js";

type Call = { orgId: string; name: string };

const call = (orgId: string, name: string): Call => ({ orgId, name });
const names = (calls: readonly Call[]) => calls.map((each) => each.name);

test("calls handed back wait ahead of their org's later calls, behind other orgs' calls already waiting", () => {
  const queue = new WaitingCalls<Call>();
  queue.add(call("b", "b1"));
  queue.add(call("a", "a3"));
  queue.add(call("b", "b2"));
  // In the order their process had them assigned; org c has nothing else waiting.
  queue.handBack(call("a", "a1"));
  queue.handBack(call("c", "c1"));
  queue.handBack(call("a", "a2"));
  assert.deepEqual(names(queue.calls), ["b1", "a3", "b2"], "they rejoin at the next serve");
  queue.serve(() => false);
  assert.deepEqual(names(queue.calls), ["b1", "a1", "a2", "a3", "b2", "c1"]);
});

test("serve offers the calls in order; those taken leave, the others keep their place", () => {
  const queue = new WaitingCalls<Call>();
  for (const name of ["a1", "b1", "a2", "b2"]) queue.add(call(name[0] ?? "", name));
  const offered: string[] = [];
  queue.serve((each) => (offered.push(each.name), each.orgId === "a"));
  assert.deepEqual(offered, ["a1", "b1", "a2", "b2"]);
  assert.deepEqual(names(queue.calls), ["b1", "b2"]);
});

test("takeAll empties the queue of the calls waiting and those handed back", () => {
  const queue = new WaitingCalls<Call>();
  assert.equal(queue.empty, true);
  queue.handBack(call("a", "a1"));
  assert.equal(queue.empty, false, "a call handed back waits too");
  queue.add(call("b", "b1"));
  assert.deepEqual(names(queue.takeAll()), ["b1", "a1"]);
  assert.equal(queue.empty, true);
  queue.serve(() => assert.fail("nothing is left to serve"));
});
