import assert from "node:assert/strict";
import { test } from "node:test";
import { withSnapshotJson } from "./snapshot-payload.js";

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
