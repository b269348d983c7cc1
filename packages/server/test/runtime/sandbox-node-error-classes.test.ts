// Node gives each of its error codes a class of its own (ERR_INVALID_ARG_VALUE, ERR_INVALID_STATE,
// …), whose prototype carries the `toString` of its errors, and the web classes it offers throw
// them on misuse: `new CompressionStream(format)` with a format it does not know. One class serves
// every version of a sandbox process. Left open, one version could take over the `toString` of
// another's errors, and read what their messages quote of that version's data.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { SandboxPool } from "../../src/runtime/sandbox-pool.js";
import { callExport, memoryLogger, target, TEST_ADAPTER } from "./sandbox-helpers.js";

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

let pool: SandboxPool;

before(() => {
  pool = new SandboxPool({ adapterPath: TEST_ADAPTER, size: 1, logger: memoryLogger() });
});
after(() => pool.close());

test("one version cannot take over the classes of the Node errors the web classes throw", async () => {
  const options = { affinity: "node-errors" };
  const escape = target("org_evil", ESCAPE);
  const victim = target("org_evil", VICTIM);
  const taken = await callExport(pool, escape, "patchErrorClasses", [], options);
  assert.equal(await callExport(pool, victim, "describeFailure", [], options), true);
  const looted = await callExport(pool, escape, "loot", [], options);
  assert.deepEqual({ taken, looted }, { taken: [], looted: [] });
});
