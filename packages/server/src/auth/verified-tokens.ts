// The key tokens this node verified with a key it remembers (key-memory.ts), so that a client
// sending the same token with every request (as clients do until it expires) has it verified
// once. Of all that verifying checks, only the time claims change with the clock, and the
// authenticator checks them again on every use (checkTimeClaims); the rest depends only on the
// token's text and the key's secret. So a verification holds for as long as the key memory holds
// the very record it was made with: a key this node deletes (forgets) or reads anew ends it. A
// token of a key that another node deleted passes here exactly as it did before this was kept,
// from memory, and the commit of what it asks fails on the key (TransitionCommit.requiresKeyId).
// Bounded, and emptied whole when full: a refill costs one verification per token.
import type { TokenClaims } from "@backstate/token";
import type { JsonValue } from "../runtime/adapter-protocol.js";
import type { KeyRecord } from "../store/store.js";
import type { Caller } from "./principal.js";

/** A key token's caller, verified from (or into) this node's key memory. */
export type RememberedKeyCaller = Caller & { kind: "key"; key: KeyRecord; fromMemory: true };

export type VerifiedToken = {
  /** Frozen, claims too: every request that sends the token gets this same caller. */
  caller: RememberedKeyCaller;
  times: Pick<TokenClaims, "exp" | "nbf" | "iat">;
};

const MAX_TOKENS = 1_024;
/** Longer tokens (which carry large claims) are verified every time rather than kept. */
const MAX_TOKEN_LENGTH = 2_048;

export class VerifiedTokens {
  readonly #tokens = new Map<string, VerifiedToken>();

  get(token: string): VerifiedToken | undefined {
    return this.#tokens.get(token);
  }

  remember(token: string, caller: RememberedKeyCaller, claims: TokenClaims): void {
    if (token.length > MAX_TOKEN_LENGTH) return;
    if (this.#tokens.size >= MAX_TOKENS) this.#tokens.clear();
    deepFreeze(caller.claims);
    this.#tokens.set(token, {
      caller: Object.freeze(caller),
      times: { exp: claims.exp, nbf: claims.nbf, iat: claims.iat },
    });
  }

  forget(token: string): void {
    this.#tokens.delete(token);
  }
}

/** Claims are JSON (objects and arrays, nested within callerNestingProblem's bound). */
function deepFreeze(value: JsonValue): void {
  if (typeof value !== "object" || value === null) return;
  Object.freeze(value);
  for (const member of Object.values(value)) deepFreeze(member);
}
