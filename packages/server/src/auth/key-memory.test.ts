import assert from "node:assert/strict";
import { test } from "node:test";
import type { KeyRecord } from "../store/store.js";
import { KeyMemory } from "./key-memory.js";

const key = (id: string): KeyRecord => ({
  id,
  orgId: "org_a",
  name: id,
  secret: `sbsec_${id}`,
  scopes: [],
  createdAt: 0,
});

test("remembers what the store answered, and forgets a key the store no longer has", () => {
  const memory = new KeyMemory();
  memory.update("sbk_a", key("sbk_a"));
  assert.deepEqual(memory.get("sbk_a"), key("sbk_a"));
  memory.update("sbk_a", undefined);
  assert.equal(memory.get("sbk_a"), undefined);
  assert.equal(memory.size, 0);
});

test("holds at most 1,024 keys, dropping the least recently used first", () => {
  const memory = new KeyMemory();
  for (let i = 0; i < 1_024; i++) memory.update(`sbk_${i}`, key(`sbk_${i}`));
  assert.ok(memory.get("sbk_0"));
  memory.update("sbk_new", key("sbk_new"));
  assert.equal(memory.size, 1_024);
  assert.ok(memory.get("sbk_0"), "just used, so kept");
  assert.equal(memory.get("sbk_1"), undefined, "the least recently used went");
  assert.ok(memory.get("sbk_new"));
});

test("a key read as it is remembered keeps the remembered record; a changed one replaces it", () => {
  const memory = new KeyMemory();
  const first = key("sbk_a");
  memory.update("sbk_a", first);
  memory.update("sbk_a", key("sbk_a"));
  assert.equal(memory.get("sbk_a"), first);
  for (const change of [
    { secret: "sbsec_other" },
    { orgId: "org_b" },
    { scopes: ["instances.write"] },
    { name: "renamed" },
    { createdAt: 1 },
  ]) {
    const changed = { ...key("sbk_a"), ...change };
    memory.update("sbk_a", changed);
    assert.equal(memory.get("sbk_a"), changed, JSON.stringify(change));
    memory.update("sbk_a", first);
  }
});
