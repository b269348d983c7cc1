// Who is calling: the kinds of caller a bearer token can prove, and the principal a request acts
// as once its org is known. Routes see only principals; they never look at tokens.
import type { JsonObject } from "../runtime/adapter-protocol.js";
import type { AdminSessionRecord, KeyRecord } from "../store/store.js";
import type { Scope } from "./scopes.js";

/** A verified bearer token, before any org is chosen. */
export type Caller = (
  | {
      kind: "key";
      key: KeyRecord;
      /**
       * The key came from this node's memory, not from the store: it may have been deleted
       * since. Only routes whose commit re-checks it get such a caller (see requiredKeyOf).
       */
      fromMemory?: true;
    }
  | { kind: "admin"; session: AdminSessionRecord }
) & {
  /** The token's `act` (with the top-level `sub` filled in when `act` has none). */
  claims: JsonObject;
  /** The token's `exp`, in epoch seconds. */
  expiresAt: number;
};

/** The caller acting within one org. */
export type Principal = {
  caller: Caller;
  orgId: string;
  scopes: ReadonlySet<Scope>;
  /** What the machine's authorizers see: the token's `act`, or the act-as header's object. */
  authContext: JsonObject;
};

/**
 * The key an engine commit made for this caller must find still there: set when the key was
 * verified from memory, so that the commit itself is the check that it was not deleted.
 */
export function requiredKeyOf(caller: Caller): string | undefined {
  return caller.kind === "key" && caller.fromMemory === true ? caller.key.id : undefined;
}
