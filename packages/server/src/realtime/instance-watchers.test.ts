import assert from "node:assert/strict";
import { test } from "node:test";
import { InstanceWatchers } from "./instance-watchers.js";

test("a state's frame is built once and shared; only a newer one replaces it", () => {
  const watchers = new InstanceWatchers();
  let builds = 0;
  const build = (text: string) => () => {
    builds++;
    return text;
  };
  assert.equal(watchers.frameOf(1, 10, build("row 1 at 10")), "row 1 at 10");
  assert.equal(watchers.frameOf(1, 10, build("built again")), "row 1 at 10");
  assert.equal(builds, 1, "the second socket's subscribe reuses the frame");
  // An older state (a read that lagged) is built for its caller, and the newer one stays.
  assert.equal(watchers.frameOf(1, 5, build("row 1 at 5")), "row 1 at 5");
  assert.equal(watchers.frameOf(1, 10, build("built again")), "row 1 at 10");
  // A later row of the name is newer whatever its ts.
  assert.equal(watchers.frameOf(2, 3, build("row 2 at 3")), "row 2 at 3");
  assert.equal(watchers.frameOf(2, 3, build("built again")), "row 2 at 3");
  assert.equal(builds, 3);
});
