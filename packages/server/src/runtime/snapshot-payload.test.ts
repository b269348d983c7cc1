import assert from "node:assert/strict";
import { test } from "node:test";
import { withJsonFirst, withSnapshotJson } from "./snapshot-payload.js";

test("a request with its snapshot spliced in parses as the object with that snapshot", () => {
  const requests: object[] = [
    {},
    { instanceName: "i" },
    { instanceName: "i", events: [{ event: { type: "t" } }], maxContextBytes: 10, readers: [] },
    { instanceName: '"},"snapshot":1,"x":{"', event: { type: "\u2028" } },
  ];
  const snapshots = [{ value: "on", context: { a: [1, { b: null }] } }, [], "s", 0, null];
  for (const request of requests) {
    for (const snapshot of snapshots) {
      const json = withSnapshotJson(JSON.stringify(snapshot), request);
      assert.deepEqual(JSON.parse(json), { ...request, snapshot });
      assert.equal(json, JSON.stringify({ snapshot, ...request }));
    }
    // No snapshot: left out, as JSON.stringify leaves out an undefined one.
    assert.equal(withSnapshotJson(undefined, request), JSON.stringify(request));
  }
});

test("a property spliced in first writes what JSON.stringify writes", () => {
  for (const rest of [{}, { view: { value: "a" } }, { b: '"},"a":1,"c":{"', c: [1, null] }]) {
    for (const value of [{ x: { y: [1] } }, [], "\u2028", -0.5, null, true]) {
      const json = withJsonFirst("a", JSON.stringify(value), rest);
      assert.equal(json, JSON.stringify({ a: value, ...rest }));
    }
  }
  assert.equal(withJsonFirst('k"\\', "1", {}), JSON.stringify({ 'k"\\': 1 }));
});
