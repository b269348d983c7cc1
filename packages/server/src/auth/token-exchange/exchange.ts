// POST /tokens (RFC 8693 token exchange, as the official client sends it): verify an identity
// provider's token, map its claims through the identity provider's mapping and then the token
// provider's, and answer a token signed with the token provider's key, whose `act` is the result
// and whose scopes are that key's. Every refusal is an OAuthError (see oauth-error.ts).
import { isIP } from "node:net";
import { lookup } from "node:dns/promises";
import {
  decodeJwt,
  decodeProtectedHeader,
  errors,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyOptions,
} from "jose";
import { BackstateError, InvalidParameterError } from "../../errors.js";
import type { Clock } from "../../engine/clock.js";
import type { Logger } from "../../engine/logger.js";
import { callerNestingProblem } from "../../runtime/json-check.js";
import { MAX_KEY_TEXT_BYTES, unstorableTextProblem } from "../../store/stored-text.js";
import type {
  IdentityProviderRecord,
  KeyRecord,
  Store,
  TokenProviderRecord,
} from "../../store/store.js";
import { AddressRefusedError } from "../../net/address-kind.js";
import { nameRefusal, refusal, type JwksAddressPolicy } from "./addresses.js";
import { reservedClaimProblem } from "../reserved-claims.js";
import { KEY_PRESETS } from "../scopes.js";
import { ANONYMOUS_SERVICE, anonymousClaims, isAnonymous } from "./anonymous.js";
import {
  DEFAULT_JWKS_OPTIONS,
  JwksCache,
  JwksUnavailableError,
  type JwksCacheOptions,
  type KeyResolver,
} from "./jwks.js";
import { applyMapping } from "./mapping.js";
import { OAuthError } from "./oauth-error.js";
import { atobSafeJson, signExchangedToken } from "./exchanged-token.js";

export const TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange";
export const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";
const SUBJECT_TOKEN_TYPES = new Set([
  ACCESS_TOKEN_TYPE,
  "urn:ietf:params:oauth:token-type:jwt",
  "urn:ietf:params:oauth:token-type:id_token",
]);

export type TokenExchangeOptions = {
  /**
   * Development mode: identity providers may publish their JWKS over http:// or https:// on
   * loopback addresses (127.0.0.0/8, ::1, localhost). Default false.
   */
  allowLoopbackJwks?: boolean;
  /**
   * JWKS from private, loopback, link-local and unique-local addresses too (over https), for
   * identity providers inside the operator's network. Default false: an org admin must not be
   * able to make the server fetch from its internal network.
   */
  allowPrivateJwksAddresses?: boolean;
  /** Clock skew tolerated on the subject token's `exp` and `nbf`. Default 30 s. */
  leewaySeconds?: number;
  /** How long issued tokens live. Default 3600 s (1 h); at least 60. */
  tokenLifetimeSeconds?: number;
  /** JWKS fetching and caching (see jwks.ts for the defaults). */
  jwks?: Partial<Omit<JwksCacheOptions, "policy" | "now">>;
};

export type TokenExchangeDeps = { store: Store; clock: Clock; logger: Logger };

export type ExchangeResponse = {
  access_token: string;
  issued_token_type: typeof ACCESS_TOKEN_TYPE;
  token_type: "Bearer";
  expires_in: number;
};

const MAX_SUBJECT_TOKEN_LENGTH = 16 * 1024;
const MAX_AUDIENCES = 16;
/**
 * The most characters the act claim takes as written in the issued token (non-ASCII characters
 * are escaped there, six characters each). It keeps the token near 11 KB, within node's 16 KiB of
 * request headers and the Authenticator's 16,384 characters; larger, no request could use it.
 */
const MAX_ACT_BYTES = 8 * 1024;
const ORG_ID = /^org_[A-Za-z0-9_-]{1,64}$/;
const SERVICE = /^[A-Za-z0-9_-]{1,128}$/;

export class TokenExchange {
  readonly policy: JwksAddressPolicy;
  readonly jwks: JwksCache;
  readonly #deps: TokenExchangeDeps;
  readonly #leeway: number;
  readonly #lifetime: number;

  constructor(deps: TokenExchangeDeps, options: TokenExchangeOptions = {}) {
    this.#deps = deps;
    this.policy = {
      allowLoopback: options.allowLoopbackJwks ?? false,
      allowPrivate: options.allowPrivateJwksAddresses ?? false,
    };
    this.#leeway = options.leewaySeconds ?? 30;
    this.#lifetime = options.tokenLifetimeSeconds ?? 3600;
    if (!Number.isInteger(this.#lifetime) || this.#lifetime < 60) {
      throw new TypeError("tokenLifetimeSeconds must be an integer ≥ 60");
    }
    this.jwks = new JwksCache({
      ...DEFAULT_JWKS_OPTIONS,
      ...options.jwks,
      policy: this.policy,
      now: () => deps.clock.now(),
    });
  }

  /**
   * The JWKS URL as it will be stored, or InvalidParameterError (`jwksUrl`) when this server would
   * never fetch it: not https (nor http to loopback in development), credentials in it, or a host
   * that is, or resolves to, a refused address. A host that does not resolve now is accepted: the
   * same checks run on every fetch.
   */
  async checkJwksUrl(text: string): Promise<string> {
    const fail = (why: string): never => {
      throw new InvalidParameterError("jwksUrl", `jwksUrl ${why}`);
    };
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      return fail("is not an absolute URL");
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") fail("must be an https:// URL");
    if (url.username !== "" || url.password !== "") fail("cannot carry a user name or password");
    if (url.protocol === "http:" && !this.policy.allowLoopback) fail("must be an https:// URL");
    const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
    if (isIP(host) !== 0) {
      const why = refusal(host, url.protocol, this.policy);
      if (why !== undefined) fail(`is refused: ${why}`);
      return url.href;
    }
    let addresses: string[] = [];
    try {
      addresses = (await withTimeout(lookup(host, { all: true }), 3000)).map((a) => a.address);
    } catch {
      if (url.protocol === "http:") fail(`host ${host} does not resolve to a loopback address`);
    }
    for (const address of addresses) {
      const why = nameRefusal(host, address, url.protocol, this.policy);
      if (why !== undefined) fail(`is refused: ${why}`);
    }
    return url.href;
  }

  /** Exchanges the form's subject token; throws OAuthError for every refusal. */
  async exchange(form: URLSearchParams): Promise<ExchangeResponse> {
    const param = (name: string, required: boolean): string | undefined => {
      const values = form.getAll(name);
      if (values.length > 1) {
        throw invalidRequest(`${name} is given ${values.length} times; give it once`);
      }
      if (required && (values[0] === undefined || values[0] === "")) {
        throw invalidRequest(`${name} is required`);
      }
      return values[0];
    };
    const grantType = param("grant_type", true);
    if (grantType !== TOKEN_EXCHANGE_GRANT) {
      throw new OAuthError(
        "unsupported_grant_type",
        "unsupported-grant-type",
        `grant_type must be ${TOKEN_EXCHANGE_GRANT}`,
      );
    }
    const subjectToken = param("subject_token", true)!;
    if (subjectToken.length > MAX_SUBJECT_TOKEN_LENGTH) {
      throw invalidRequest(`subject_token is longer than ${MAX_SUBJECT_TOKEN_LENGTH} characters`);
    }
    const subjectTokenType = param("subject_token_type", false);
    if (subjectTokenType !== undefined && !SUBJECT_TOKEN_TYPES.has(subjectTokenType)) {
      throw invalidRequest(
        `subject_token_type must name a JWT (${[...SUBJECT_TOKEN_TYPES].join(", ")})`,
      );
    }
    const requested = param("requested_token_type", false);
    if (requested !== undefined && requested !== ACCESS_TOKEN_TYPE) {
      throw invalidRequest(`requested_token_type must be ${ACCESS_TOKEN_TYPE}`);
    }
    const { orgId, service } = parseAudience(param("audience", true)!);

    const provider = await this.#deps.store.getTokenProvider(orgId, service);
    if (provider === undefined) {
      throw new OAuthError(
        "invalid_target",
        "token-provider-not-found",
        `org ${orgId} has no token provider for service ${service}`,
      );
    }
    const key = await this.#deps.store.getKey(provider.keyId);
    if (key === undefined || key.orgId !== orgId) {
      throw new OAuthError(
        "invalid_target",
        "token-provider-key-missing",
        `the key of token provider ${service} (${provider.keyId}) no longer exists`,
      );
    }

    const { idp, claims } = await this.#verify(orgId, subjectToken);
    const anonymous = isAnonymous(orgId, idp);
    checkMayUse(idp, anonymous, provider, key);
    const mapped = applyMapping(provider.mapping, applyMapping(idp.mapping, claims));
    const act = anonymous ? anonymousClaims(mapped) : mapped;
    // The Authenticator would refuse the token on every request: mint none. (The mappings may
    // nest what they select deeper than the subject token held it.)
    const reserved =
      reservedClaimProblem(act, "the mapped claims") ??
      callerNestingProblem(act, "the mapped claims");
    if (reserved !== undefined) throw grantError("token-claim-invalid", reserved);
    if (atobSafeJson(act).length > MAX_ACT_BYTES) {
      throw new OAuthError(
        "invalid_grant",
        "claims-too-large",
        `the mapped claims are larger than ${MAX_ACT_BYTES} bytes as JSON in the token ` +
          "(where a non-ASCII character takes 6)",
      );
    }
    const issuedAt = Math.floor(this.#deps.clock.now() / 1000);
    // Never longer than the subject token vouches for the user (verified: exp is required).
    const expiresAt = Math.min(
      issuedAt + this.#lifetime,
      Math.max(issuedAt, Math.floor(claims.exp!)),
    );
    return {
      access_token: signExchangedToken({
        keyId: key.id,
        secret: key.secret,
        act,
        issuer: issuerOf(provider),
        issuedAt,
        expiresAt,
      }),
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: "Bearer",
      expires_in: expiresAt - issuedAt,
    };
  }

  /** The identity provider that vouches for the token, and the token's verified claims. */
  async #verify(
    orgId: string,
    token: string,
  ): Promise<{ idp: IdentityProviderRecord; claims: JWTPayload }> {
    let unverified: JWTPayload;
    let alg: string | undefined;
    try {
      unverified = decodeJwt(token);
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw grantError("token-malformed", "subject_token is not a JWT (header.payload.signature)");
    }
    // Before the mappings walk them (and JSON.stringify copies what they select).
    const tooDeep = callerNestingProblem(unverified, "the subject token's payload");
    if (tooDeep !== undefined) throw grantError("token-claim-invalid", tooDeep);
    const audiences = [unverified.aud ?? []].flat().filter((aud) => typeof aud === "string");
    const issuer = typeof unverified.iss === "string" ? unverified.iss : undefined;
    if (audiences.length > MAX_AUDIENCES) {
      throw grantError(
        "token-audience-invalid",
        `the subject token names over ${MAX_AUDIENCES} audiences`,
      );
    }
    // Unverified, and looked up: text no identity provider can be saved under is refused here,
    // before the store sees it (PostgreSQL would fail on a NUL, SQLite not: one answer for both).
    for (const aud of audiences) checkLookupClaim("aud", aud);
    if (issuer !== undefined) checkLookupClaim("iss", issuer);
    const candidates = await this.#deps.store.findIdentityProviders(orgId, { audiences, issuer });
    if (candidates.length === 0) {
      throw grantError(
        "identity-provider-not-found",
        `org ${orgId} has no identity provider for tokens with ` +
          `aud ${JSON.stringify(unverified.aud ?? null)} and iss ${JSON.stringify(issuer ?? null)}`,
      );
    }
    let firstError: OAuthError | undefined;
    for (const idp of candidates) {
      try {
        return { idp, claims: await this.#verifyWith(idp, token) };
      } catch (error) {
        firstError ??= this.#explain(error, idp, alg);
      }
    }
    throw firstError!;
  }

  async #verifyWith(idp: IdentityProviderRecord, token: string): Promise<JWTPayload> {
    const options: JWTVerifyOptions = {
      algorithms: idp.algs,
      clockTolerance: this.#leeway,
      currentDate: new Date(this.#deps.clock.now()),
      requiredClaims: ["exp"],
      ...(idp.aud !== undefined ? { audience: idp.aud } : {}),
      ...(idp.iss !== undefined ? { issuer: idp.iss } : {}),
    };
    if (idp.key !== undefined) {
      return (await jwtVerify(token, Buffer.from(idp.key, "base64url"), options)).payload;
    }
    if (idp.jwksUrl === undefined) throw new TypeError("an identity provider without keys");
    const resolver: KeyResolver = this.jwks.resolver(idp.jwksUrl);
    try {
      return (await jwtVerify(token, resolver, options)).payload;
    } catch (error) {
      // Several keys of the set fit the token (no kid): whichever verifies it will do.
      if (!(error instanceof errors.JWKSMultipleMatchingKeys)) throw error;
      for await (const candidate of error) {
        try {
          return (await jwtVerify(token, candidate, options)).payload;
        } catch (inner) {
          if (!(inner instanceof errors.JWSSignatureVerificationFailed)) throw inner;
        }
      }
      throw new errors.JWSSignatureVerificationFailed();
    }
  }

  #explain(error: unknown, idp: IdentityProviderRecord, alg: string | undefined): OAuthError {
    const which = describe(idp);
    if (error instanceof errors.JWTExpired) {
      return grantError("token-expired", "the subject token has expired");
    }
    if (error instanceof errors.JWTClaimValidationFailed) {
      // jose's reason says which check failed: an nbf or exp that is not a number is "invalid".
      if (error.claim === "nbf" && error.reason === "check_failed") {
        return grantError("token-not-yet-valid", "the subject token is not valid yet (nbf)");
      }
      if (error.claim === "exp" && error.reason === "missing") {
        return grantError("token-expiry-missing", "the subject token has no exp claim");
      }
      return grantError(
        "token-claim-invalid",
        `the subject token's ${error.claim} claim: ${error.message}`,
      );
    }
    if (error instanceof errors.JOSEAlgNotAllowed) {
      return grantError(
        "token-algorithm-not-allowed",
        `the subject token is signed with ${alg ?? "an unnamed algorithm"}, which ${which} ` +
          `does not allow (it allows ${idp.algs.join(", ")})`,
      );
    }
    if (error instanceof errors.JWSSignatureVerificationFailed) {
      return grantError(
        "token-signature-invalid",
        `the subject token's signature does not verify with ${which}'s keys`,
      );
    }
    if (error instanceof errors.JWKSNoMatchingKey) {
      return grantError(
        "token-unknown-key",
        `no key in the JWKS of ${which} fits the subject token (kid, alg)`,
      );
    }
    if (error instanceof AddressRefusedError) {
      return grantError(
        "jwks-address-refused",
        `the JWKS URL of ${which} is refused: ${error.message}`,
      );
    }
    if (error instanceof JwksUnavailableError) {
      return new OAuthError("temporarily_unavailable", "jwks-unavailable", error.message, {
        cause: error,
      });
    }
    if (error instanceof errors.JOSEError) {
      return grantError(
        "token-malformed",
        `the subject token cannot be verified: ${error.message}`,
      );
    }
    // A published key that cannot be used: jose refuses one too weak for the token's algorithm
    // (an RSA key under 2,048 bits) with a TypeError, WebCrypto one whose numbers are not a key
    // (a point off its curve) with a DataError. The identity provider is at fault, not this server.
    const unusableKey =
      error instanceof TypeError || (error instanceof DOMException && error.name === "DataError");
    if (unusableKey && idp.jwksUrl !== undefined) {
      return grantError(
        "jwks-key-unusable",
        `the key in the JWKS of ${which} that fits the subject token cannot be used: ${error.message}`,
      );
    }
    this.#deps.logger.error("token exchange: unexpected error while verifying", {
      error: error instanceof Error ? (error.stack ?? error.message) : String(error),
    });
    return new OAuthError(
      "server_error",
      "internal-error",
      "the subject token could not be verified",
    );
  }
}

/** Our error for anything that is not an OAuthError: logged, and answered as server_error. */
export function toOAuthError(error: unknown, logger: Logger): OAuthError {
  if (error instanceof OAuthError) return error;
  // An InvalidParameterError, or the store refusing a value (see toStoreError).
  if (error instanceof BackstateError && error.code === "invalid-parameter") {
    return new OAuthError("invalid_request", "invalid-parameter", error.message);
  }
  if (error instanceof Error && (error as { code?: unknown }).code === "payload-too-large") {
    return new OAuthError("invalid_request", "payload-too-large", error.message, { status: 413 });
  }
  if (error instanceof Error && (error as { code?: unknown }).code === "store-error") {
    return new OAuthError("temporarily_unavailable", "store-error", "storage is unavailable");
  }
  logger.error("token exchange: unexpected error", {
    error: error instanceof Error ? (error.stack ?? error.message) : String(error),
  });
  return new OAuthError("server_error", "internal-error", "internal server error");
}

/**
 * Refuses an identity provider's token at a token provider it may not mint through: an anonymous
 * one anywhere but the anonymous service, or beyond the production scopes anonymous sessions are
 * made with (whatever key an admin gives that service); and any other one at a provider whose key
 * holds a scope beyond its grantable scopes (whoever configured it could not mint those), or when
 * it was saved before those were recorded.
 */
function checkMayUse(
  idp: IdentityProviderRecord,
  anonymous: boolean,
  provider: TokenProviderRecord,
  key: KeyRecord,
): void {
  const refuse = (why: string): never => {
    throw new OAuthError(
      "invalid_target",
      "identity-provider-not-allowed",
      `${describe(idp)} cannot be exchanged for tokens of service ${provider.service}: ${why}`,
    );
  };
  if (anonymous && provider.service !== ANONYMOUS_SERVICE) {
    refuse(`its tokens are anonymous sessions, for service ${ANONYMOUS_SERVICE} only`);
  }
  const grantableScopes = anonymous ? KEY_PRESETS.production : idp.grantableScopes;
  if (grantableScopes === undefined) {
    refuse(
      "it was saved before identity providers recorded who saved them: save it again " +
        "(POST /idps, or the CLI's identity-providers upsert) to use it",
    );
  }
  const grantable = new Set<string>(grantableScopes);
  const beyond = key.scopes.filter((scope) => !grantable.has(scope));
  if (beyond.length > 0) {
    refuse(`its key holds ${beyond.join(", ")}, beyond what whoever configured it holds`);
  }
}

/** Refuses an aud or iss that is not text an identity provider could be saved under. */
function checkLookupClaim(claim: "aud" | "iss", value: string): void {
  const problem = unstorableTextProblem(value, MAX_KEY_TEXT_BYTES);
  if (problem === undefined) return;
  const code = claim === "aud" ? "token-audience-invalid" : "token-claim-invalid";
  throw grantError(code, `the subject token's ${claim} claim ${problem}`);
}

/** `https://tokens.statebacked.dev/<orgId>/<service>`: the host is ignored (the client fixes it). */
function parseAudience(audience: string): { orgId: string; service: string } {
  let segments: string[];
  try {
    segments = new URL(audience).pathname.split("/").filter((segment) => segment !== "");
  } catch {
    segments = [];
  }
  const [orgId, service] = segments.slice(-2);
  if (segments.length < 2 || !ORG_ID.test(orgId!) || !SERVICE.test(service!)) {
    throw new OAuthError(
      "invalid_target",
      "invalid-audience",
      "audience must be https://tokens.statebacked.dev/<orgId>/<service>",
    );
  }
  return { orgId: orgId!, service: service! };
}

function issuerOf(provider: TokenProviderRecord): string {
  return `https://tokens.statebacked.dev/${provider.orgId}/${provider.service}`;
}

function describe(idp: IdentityProviderRecord): string {
  const parts = [
    ...(idp.aud !== undefined ? [`aud ${idp.aud}`] : []),
    ...(idp.iss !== undefined ? [`iss ${idp.iss}`] : []),
  ];
  return `the identity provider (${parts.join(", ")})`;
}

function invalidRequest(description: string): OAuthError {
  return new OAuthError("invalid_request", "invalid-parameter", description);
}

function grantError(code: string, description: string): OAuthError {
  return new OAuthError("invalid_grant", code, description);
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
