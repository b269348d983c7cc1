// Turns an `authorization` header into a Caller. Key tokens (kid `sbk_…`) are signed with an org
// key; admin session tokens (kid `ses_…`) with a session the server minted. Both are looked up on
// every request, so a deleted key or session stops verifying at once, on every node. The one
// exception is asked for by the caller (`keyFromMemory`): a key this node read lately is used as
// remembered, and then what the request does must check the key itself, in the commit that
// writes its effect (TransitionCommit.requiresKeyId) or with `confirm` before any other answer.
import { checkTimeClaims, DEFAULT_AUDIENCE, TokenError, verifyToken } from "@backstate/token";
import { BackstateError, InvalidParameterError } from "../errors.js";
import type { JsonObject } from "../runtime/adapter-protocol.js";
import { callerNestingProblem } from "../runtime/json-check.js";
import type { AdminSessionRecord, KeyRecord, Store } from "../store/store.js";
import { KeyMemory } from "./key-memory.js";
import type { Caller } from "./principal.js";
import { reservedClaimProblem } from "./reserved-claims.js";
import { VerifiedTokens, type RememberedKeyCaller } from "./verified-tokens.js";

/** The audience of admin session tokens: a key token can never pass for one, nor the reverse. */
export const ADMIN_AUDIENCE = "https://backstate.dev/admin";

export type AuthenticatorOptions = {
  store: Store;
  /** Extra audiences key tokens may carry besides State Backed's hard-coded one. */
  keyAudiences?: readonly string[];
  /** Clock skew tolerated on expiry. Default 30 s. */
  leewaySeconds?: number;
  clock?: () => number;
};

type Found = { secret: string } & (
  | { kind: "key"; key: KeyRecord; fromMemory: boolean }
  | { kind: "admin"; session: AdminSessionRecord }
);

export type AuthenticateOptions = {
  /** Verify a key token with the key as this node last read it, if it did (see the top). */
  keyFromMemory?: boolean;
} & ExpiryOptions;

export type ExpiryOptions = {
  /**
   * How long after its `exp` (beyond the clock skew) a token still passes, in seconds. Only the
   * realtime endpoint asks for it (see RealtimeOptions.tokenGraceSeconds); everything else about
   * the token is checked as without it. Default 0.
   */
  expiredGraceSeconds?: number;
};

const DEFAULT_LEEWAY_SECONDS = 30;

const UNKNOWN_KEY = "token is signed by an unknown key";

export class Authenticator {
  private readonly keyAudiences: readonly string[];
  private readonly keys = new KeyMemory();
  private readonly verified = new VerifiedTokens();

  constructor(private readonly options: AuthenticatorOptions) {
    this.keyAudiences = [DEFAULT_AUDIENCE, ...(options.keyAudiences ?? [])];
  }

  /**
   * The caller an `authorization` header proves. A key token verified from memory before (see
   * remembered) is answered at once, without a promise: that is every event a client sends with
   * the token it holds, and the promises verifying would create cost a loaded node's main thread.
   * Anything it fails on is thrown then, not rejected: await the answer.
   */
  authenticate(
    authorization: string | undefined,
    options: AuthenticateOptions = {},
  ): Caller | Promise<Caller> {
    return this.verifyNow(bearerToken(authorization), options);
  }

  /**
   * Reads a caller's key from the store when it was verified from memory: throws 401
   * `token-unknown-key`, as verifying would have, when it is gone.
   */
  async confirm(caller: Caller): Promise<void> {
    if (caller.kind !== "key" || caller.fromMemory !== true) return;
    const key = await this.options.store.getKey(caller.key.id);
    this.keys.update(caller.key.id, key);
    if (key === undefined) throw new TokenError("token-unknown-key", UNKNOWN_KEY);
  }

  /** Forgets a key this node deleted, so its tokens fail before any machine code runs. */
  forget(keyId: string): void {
    this.keys.update(keyId, undefined);
  }

  /** Whether the caller's key or session still exists (both can be deleted while a socket lives). */
  async stillValid(caller: Caller): Promise<boolean> {
    const found =
      caller.kind === "key"
        ? await this.options.store.getKey(caller.key.id)
        : await this.options.store.getAdminSession(caller.session.id);
    return found !== undefined;
  }

  /**
   * Throws 403 `token-expired` when the caller's token has expired by the rule `verify` applies
   * with the same options: for a socket verified earlier that asks for something new.
   */
  checkExpiry(caller: Caller, options: ExpiryOptions = {}): void {
    // verifyToken's own check, with the same numbers: one rule, one message.
    checkTimeClaims({ exp: caller.expiresAt }, this.timeOptions(options));
  }

  /** Verifies a bare token (the realtime handshake carries it in the query string). */
  async verify(token: string, options: AuthenticateOptions = {}): Promise<Caller> {
    return this.verifyNow(token, options);
  }

  /** A key token verified from memory before is answered at once; any other, with its key. */
  private verifyNow(token: string, options: AuthenticateOptions): Caller | Promise<Caller> {
    const remembered = options.keyFromMemory === true ? this.remembered(token, options) : undefined;
    return remembered ?? this.verifyWithKey(token, options);
  }

  /** Verifies the token's signature with its key (looked up as `keyFromMemory` says) and claims. */
  private async verifyWithKey(token: string, options: AuthenticateOptions): Promise<Caller> {
    const verified = await verifyToken<Found>(token, {
      lookupKey: (keyId) => this.lookup(keyId, options.keyFromMemory === true),
      audience: [...this.keyAudiences, ADMIN_AUDIENCE],
      ...this.timeOptions(options),
    });
    const found = verified.key;
    // `act`, with the top-level `sub` filled in when `act` has none (State Backed's rule).
    const claims = verified.authContext as JsonObject;
    // The signature says who wrote it, not that it is sane: machines' authorizers get it next.
    const tooDeep = callerNestingProblem(claims, "the token's act claim");
    if (tooDeep !== undefined) throw new InvalidParameterError("token", tooDeep);
    // A key's holder may vouch for end users, never pass for an instance of the org's machines.
    const reserved = reservedClaimProblem(claims, "the token's act claim");
    if (reserved !== undefined) throw new TokenError("token-claim-invalid", reserved);
    const audiences = [verified.claims.aud ?? []].flat();
    const isAdminToken = audiences.includes(ADMIN_AUDIENCE);
    const expiresAt = verified.claims.exp;
    if (found.kind === "admin" && isAdminToken) {
      return { kind: "admin", session: found.session, claims, expiresAt };
    }
    if (found.kind === "key" && !isAdminToken) {
      const key = found.key;
      const fromMemory: RememberedKeyCaller = {
        kind: "key",
        key,
        fromMemory: true,
        claims,
        expiresAt,
      };
      // Either way the key memory now holds this record (see remembered). A key read from the
      // store answers this request as such; the next ones with the token are served from memory.
      if (options.keyFromMemory === true)
        this.verified.remember(token, fromMemory, verified.claims);
      return found.fromMemory ? fromMemory : { kind: "key", key, claims, expiresAt };
    }
    throw new TokenError("token-audience-invalid", "the token's audience does not fit its key");
  }

  /**
   * The caller of a key token verified before (verified-tokens.ts), if the key memory still holds
   * the record it was verified with; its time claims are checked again, as verifying would now.
   */
  private remembered(token: string, options: ExpiryOptions): Caller | undefined {
    const kept = this.verified.get(token);
    if (kept === undefined) return undefined;
    const { caller } = kept;
    if (this.keys.get(caller.key.id) !== caller.key) {
      this.verified.forget(token);
      return undefined;
    }
    try {
      checkTimeClaims(kept.times, this.timeOptions(options));
    } catch (error) {
      this.verified.forget(token);
      throw error;
    }
    return caller;
  }

  private now(): number {
    return (this.options.clock ?? Date.now)();
  }

  /**
   * How a token's time claims are checked: on this authenticator's clock, with its skew, and how
   * long after `exp` a token still passes (the skew, plus any grace asked for).
   */
  private timeOptions(options: ExpiryOptions) {
    return {
      clock: () => this.now(),
      leewaySeconds: this.options.leewaySeconds ?? DEFAULT_LEEWAY_SECONDS,
      expiredGraceSeconds: options.expiredGraceSeconds ?? 0,
    };
  }

  /** A key remembered is answered at once: verifyToken then checks the token in this same turn. */
  private lookup(keyId: string, fromMemory: boolean): Found | Promise<Found | undefined> {
    const remembered = fromMemory && keyId.startsWith("sbk_") ? this.keys.get(keyId) : undefined;
    if (remembered) return { kind: "key", key: remembered, secret: remembered.secret, fromMemory };
    return this.read(keyId);
  }

  private async read(keyId: string): Promise<Found | undefined> {
    if (keyId.startsWith("sbk_")) {
      const key = await this.options.store.getKey(keyId);
      this.keys.update(keyId, key);
      return key && { kind: "key", key, secret: key.secret, fromMemory: false };
    }
    if (keyId.startsWith("ses_")) {
      const session = await this.options.store.getAdminSession(keyId);
      return session && { kind: "admin", session, secret: session.secret };
    }
    return undefined;
  }
}

function bearerToken(authorization: string | undefined): string {
  const match = authorization === undefined ? null : /^Bearer +(\S+) *$/i.exec(authorization);
  if (!match?.[1]) {
    throw new BackstateError(
      "token-missing",
      "send a token in the authorization header: Bearer <token>",
    );
  }
  return match[1];
}
