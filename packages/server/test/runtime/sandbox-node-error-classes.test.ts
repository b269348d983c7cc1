// Node gives each of its error codes a class of its own (ERR_INVALID_ARG_VALUE, ERR_INVALID_STATE,
// …), whose prototype carries the `toString` of its errors, and the web classes it offers throw
// them on misuse: `new CompressionStream(format)` with a format it does not know. One class serves
// every version of a sandbox process. Left open, one version could take over the `toString` of
// another's errors, and read what their messages quote of that version's data.
import assert from "node:assert/strict";
import { test } from "node:test";
import { versionsSharingAProcess } from "./sandbox-helpers.js";

const SECRET = "the-victim-secret";

const VICTIM = `
export default { id: "victim" };
export function describeFailure() {
  try {
    new CompressionStream(${JSON.stringify(SECRET)});
    return "no failure";
  } catch (error) {
    return String(error).includes("CompressionStream") || String(error).includes("format");
  }
}
`;

const ESCAPE = `
export default { id: "escape" };
const seen = [];
const symbol = (o, name) => Object.getOwnPropertySymbols(o).find((s) => s.description === name);

// Misuses of what machine code is offered, each thrown a Node error of a class of its own.
const MISUSES = {
  argValue: () => new CompressionStream("nope"),
  argType: () => new Blob(1),
  invalidThis: () => Blob.prototype.text.call({}),
  missingArgs: () => Reflect.construct(Event, []),
  illegalConstructor: () => new AbortSignal(),
  invalidState: () => { const s = new ReadableStream(); s.getReader(); s.getReader(); },
  encoding: () => new TextDecoder("nope"),
  tuple: () => new URLSearchParams([[1]]),
  outOfRange: () => AbortSignal.timeout(-1),
  // Node's AbortError, from its streams, which machine code reaches behind a CompressionStream.
  abort: () => {
    const stream = new CompressionStream("gzip");
    const { promises, PassThrough } = stream[symbol(stream, "kHandle")].constructor;
    return promises.finished(new PassThrough(), { signal: AbortSignal.abort() });
  },
};

export async function patchErrorClasses() {
  const taken = [];
  for (const [name, misuse] of Object.entries(MISUSES)) {
    let error;
    try { await misuse(); } catch (e) { error = e; }
    const prototype = error && Object.getPrototypeOf(error);
    if (!prototype || prototype === TypeError.prototype || prototype === Error.prototype) continue;
    const original = prototype.toString;
    try {
      Object.defineProperty(prototype, "toString", {
        value: function () { seen.push(this.message); return Reflect.apply(original, this, []); },
        writable: true,
        configurable: true,
      });
      taken.push(name);
    } catch {}
  }
  return taken;
}

export const loot = () => seen.filter((message) => message.includes(${JSON.stringify(SECRET)}));
`;

const { attacker, victim } = versionsSharingAProcess(ESCAPE, VICTIM);

test("one version cannot take over the classes of the Node errors the web classes throw", async () => {
  const taken = await attacker("patchErrorClasses");
  assert.equal(await victim("describeFailure"), true);
  const looted = await attacker("loot");
  assert.deepEqual({ taken, looted }, { taken: [], looted: [] });
});
