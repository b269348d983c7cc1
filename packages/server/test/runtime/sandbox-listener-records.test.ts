// An EventTarget keeps each listener in a record whose class (Node's internal Listener) no global
// leads to, but machine code reaches one through the target's symbol-keyed [kEvents] map. Every
// EventTarget of the process shares that prototype, and Node's own dispatch reads it (`once`,
// `weak`, `remove`) for every event of every version: patched by one version, it hands that
// version the listeners of the others, functions of their realms, and with them their globals.
import assert from "node:assert/strict";
import { test } from "node:test";
import { versionsSharingAProcess } from "./sandbox-helpers.js";

const VICTIM = `
export default { id: "victim" };
globalThis.secret = "the victim's secret";
export function abort() {
  const controller = new AbortController();
  let seen = false;
  controller.signal.addEventListener("abort", () => { seen = true; });
  controller.abort();
  return seen;
}
`;

const ESCAPE = `
export default { id: "escape" };
const caught = [];

export function patchListeners() {
  const target = new EventTarget();
  target.addEventListener("x", () => {});
  const events = target[Object.getOwnPropertySymbols(target).find((s) => s.description === "kEvents")];
  const record = Map.prototype.get.call(events, "x").next;
  const prototype = Object.getPrototypeOf(record);
  const once = Object.getOwnPropertyDescriptor(prototype, "once").get;
  try {
    Object.defineProperty(prototype, "once", {
      get() { caught.push(this.callback); return Reflect.apply(once, this, []); },
      configurable: true,
    });
    return "patched";
  } catch {
    return "refused";
  }
}

export function loot() {
  for (const callback of caught) {
    try {
      const global = callback.constructor("return globalThis")();
      if (global !== globalThis && typeof global.secret === "string") return global.secret;
    } catch {}
  }
  return null;
}
`;

const { attacker, victim } = versionsSharingAProcess(ESCAPE, VICTIM);

test("one version cannot patch the listener records of every EventTarget", async () => {
  const patched = await attacker("patchListeners");
  assert.equal(await victim("abort"), true);
  const looted = await attacker("loot");
  assert.deepEqual({ patched, looted }, { patched: "refused", looted: null });
});
