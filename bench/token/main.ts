// bench/token: signToken against @statebacked/token, and verifyToken over distinct tokens against
// the floor of a bare node:crypto HMAC-SHA256 check of the same tokens. Run: npm run bench:token
import { createHmac, timingSafeEqual } from "node:crypto";
import { signToken as upstreamSignToken } from "@statebacked/token";
import { generateKey, signToken, verifyToken } from "@backstate/token";
import { compare, report } from "../measure.js";

const BATCH = 20_000;
const ROUNDS = 9;
const key = generateKey();
const secret = Buffer.from(key.stateBackedSecretKey, "utf8");
const options = { expires: { in: "1h" } } as const;

const signing = await compare(
  async () => {
    for (let i = 0; i < BATCH; i++) await signToken(key, { sub: `user-${i}` }, options);
  },
  async () => {
    for (let i = 0; i < BATCH; i++) await upstreamSignToken(key, { sub: `user-${i}` }, options);
  },
  BATCH,
  ROUNDS,
);

// Distinct tokens, so nothing can be cached per token.
const tokens = await Promise.all(
  Array.from({ length: BATCH }, (_, i) => signToken(key, { sub: `user-${i}`, n: i }, options)),
);
// Configuration made once, as a server makes it, and reused for every token.
const verifyOptions = {
  lookupKey: (kid: string) =>
    kid === key.stateBackedKeyId ? { secret: key.stateBackedSecretKey } : undefined,
};

const verifying = await compare(
  async () => {
    for (const token of tokens) await verifyToken(token, verifyOptions);
  },
  // The floor: only the MAC and its comparison; no parsing, no claims, no lookup.
  () => {
    for (const token of tokens) {
      const dot = token.lastIndexOf(".");
      const expected = createHmac("sha256", secret).update(token.slice(0, dot)).digest();
      const given = Buffer.from(token.slice(dot + 1), "base64url");
      if (!timingSafeEqual(expected, given)) throw new Error("bad token");
    }
  },
  BATCH,
  ROUNDS,
);

console.log(
  `bench/token (${BATCH.toLocaleString("en-US")} ops a round, median of ${ROUNDS} rounds)`,
);
const signOk = report("signToken", signing, "@statebacked/token", 2);
const verifyOk = report("verifyToken", verifying, "bare HMAC-SHA256", 0.5);
if (!signOk || !verifyOk) process.exitCode = 1;
