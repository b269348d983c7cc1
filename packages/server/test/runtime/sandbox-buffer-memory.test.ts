// Machine code reaches Node's Buffer (a zlib stream's output buffer is one, behind a
// CompressionStream's [kHandle]). Node hands out small Buffers as slices of one shared 8 KiB pool,
// whose whole ArrayBuffer a slice's `.buffer` is, and allocUnsafe leaves memory as the last user
// left it. Both hold what the sandbox's host code decoded for other versions (response bodies,
// form data): one version could read another's, as it left them or later, as they are written.
import assert from "node:assert/strict";
import { test } from "node:test";
import { versionsSharingAProcess } from "./sandbox-helpers.js";

const SECRET = "the-victim-secret";

const VICTIM = `
export default { id: "victim" };
const secret = ${JSON.stringify(SECRET)};
export async function readBodies() {
  const texts = [];
  texts.push(await new Response(secret).text());
  texts.push(await new Response(JSON.stringify({ secret })).text());
  const form = new FormData();
  form.append("secret", secret);
  texts.push(await new Response(form).text());
  for (let i = 0; i < 50; i++) await new Response(("x".repeat(100) + secret).repeat(100)).text();
  return texts.length;
}
`;

const ESCAPE = `
export default { id: "escape" };
const secret = ${JSON.stringify(SECRET)};
const decode = (bytes) => new TextDecoder("latin1").decode(bytes);
let NodeBuffer;
let pool;

export function takePool() {
  const stream = new CompressionStream("gzip");
  const handle = stream[Object.getOwnPropertySymbols(stream).find((s) => s.description === "kHandle")];
  NodeBuffer = handle._outBuffer.constructor;
  try { NodeBuffer.poolSize = 8 * 1024; } catch {}
  pool = NodeBuffer.allocUnsafe(1).buffer;
}

export function found() {
  const inPool = decode(new Uint8Array(pool)).includes(secret);
  let leftOver = 0;
  for (let i = 0; i < 2000; i++) {
    const bytes = NodeBuffer.allocUnsafe(4096 + (i % 50) * 256);
    if (decode(bytes).includes(secret)) leftOver++;
  }
  return { inPool, leftOver };
}
`;

const { attacker, victim } = versionsSharingAProcess(ESCAPE, VICTIM);

test("one version cannot read another's data in Node's shared Buffer pool or in memory allocUnsafe leaves", async () => {
  // The pool, if any, is taken first: the victim's data would be written into it later.
  await attacker("takePool");
  assert.equal(await victim("readBodies"), 3);
  assert.deepEqual(await attacker("found"), {
    inPool: false,
    leftOver: 0,
  });
});
