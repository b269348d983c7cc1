import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_MAX_CONNECTIONS, defaultMaxConnections } from "./connection-cap.js";

test("the default cap leaves room under the open-file limit for what is not a connection", () => {
  assert.equal(defaultMaxConnections(undefined), DEFAULT_MAX_CONNECTIONS);
  assert.equal(defaultMaxConnections(1_048_576), DEFAULT_MAX_CONNECTIONS);
  // A tenth of the limit is kept, at least 64 descriptors.
  assert.equal(defaultMaxConnections(20_000), 18_000);
  assert.equal(defaultMaxConnections(1024), 921);
  assert.equal(defaultMaxConnections(128), 64);
  assert.equal(defaultMaxConnections(50), 1);
});
