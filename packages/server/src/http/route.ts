// What one API endpoint is: method, path, who may call it, the schemas of its input, and its
// handler. The router, the authorization matrix test and /openapi.json all read the same list.
import type { z } from "zod";
import type { Authenticator } from "../auth/authenticator.js";
import type { TokenExchange } from "../auth/token-exchange/exchange.js";
import type { Caller, Principal } from "../auth/principal.js";
import type { Scope } from "../auth/scopes.js";
import type { Clock } from "../engine/clock.js";
import type { Engine } from "../engine/engine.js";
import type { IdGenerator } from "../engine/ids.js";
import type { Logger } from "../engine/logger.js";
import type { Store } from "../store/store.js";
import type { ApiRequest } from "./api-request.js";
import type { HealthCheck } from "./health-check.js";
import type { UploadSigner } from "./upload-signer.js";

export type Method = "GET" | "POST" | "PUT" | "DELETE";

/**
 * Who may call: anyone (the self-authenticating upload URL, the OpenAPI document); an admin
 * session with no org needed (orgs); or a principal in an org holding any one of `scopes`.
 */
export type Access =
  { kind: "public" } | { kind: "user" } | { kind: "org"; anyScope: readonly [Scope, ...Scope[]] };

export type ApiServices = {
  engine: Engine;
  store: Store;
  authenticator: Authenticator;
  uploads: UploadSigner;
  clock: Clock;
  ids: IdGenerator;
  logger: Logger;
  /** The absolute base URL clients reach this server at, for the upload URL. */
  publicUrl(request: ApiRequest): string;
  /**
   * Token exchange (POST /tokens) and the JWKS policy identity providers are checked against.
   * When absent, the routes make one with the default (strict) options on first use.
   */
  tokenExchange?: TokenExchange;
  /** GET /healthz: whether this node takes requests. */
  health: HealthCheck;
};

export type RouteInput<P, Q, B> = {
  params: P;
  query: Q;
  body: B;
  /** Set when access is "org". */
  principal: Principal;
  /** Set when access is "user" or "org". */
  caller: Caller;
  /** Headers, and the unread body for routes that parse it themselves (the upload, /tokens). */
  request: ApiRequest;
  services: ApiServices;
};

export type Route<P = unknown, Q = unknown, B = unknown> = {
  method: Method;
  /** `:name` marks a path parameter: `/machines/:machineName`. */
  path: string;
  summary: string;
  access: Access;
  params?: z.ZodType<P>;
  query?: z.ZodType<Q>;
  /** A JSON body's schema, or "multipart" for the upload form (parsed by the handler). */
  body?: z.ZodType<B> | "multipart";
  /** Largest body accepted. Default 4 MB (a 400 KB context can take 6× that with escapes). */
  maxBodyBytes?: number;
  /**
   * The handler's only write is an engine commit that requires the caller's key (it passes
   * `requiredKeyOf(caller)` on): a key token is then verified with the key as this node last read
   * it, one store read fewer per request. Any answer but the commit's own confirms the key first.
   */
  keyCheckedAtCommit?: true;
  /** Its answers, errors included, carry credentials: `Cache-Control: no-store` (RFC 6749 §5.1). */
  noStore?: true;
  /** 200 answers the handler's value as JSON; 201 and 204 answer no body (the client relies on it). */
  status: 200 | 201 | 204;
  response?: z.ZodType;
  handle(input: RouteInput<P, Q, B>): Promise<unknown>;
};

/** Keeps each route's types checked while the list holds them side by side. */
export function route<P = undefined, Q = undefined, B = undefined>(
  definition: Route<P, Q, B>,
): Route {
  return definition;
}
