// Runs one route for one request, in the order every endpoint shares: authenticate (401), pick
// the org and check the scope (403), validate path, query and body (400), then the handler.
import type { z } from "zod";
import { ACT_HEADER, ORG_HEADER, resolvePrincipal } from "../auth/resolve-principal.js";
import type { Caller, Principal } from "../auth/principal.js";
import type { Scope } from "../auth/scopes.js";
import { ForbiddenError, InvalidParameterError } from "../errors.js";
import type { ApiRequest } from "./api-request.js";
import { readJsonBody } from "./read-body.js";
import type { ApiServices, Route } from "./route.js";

const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;

/** What a route answers: its status and, for 200, the value to send as JSON. */
export type RouteReply = { status: number; body?: unknown };

export async function handleRoute(
  route: Route,
  request: ApiRequest,
  pathParams: Record<string, string>,
  services: ApiServices,
): Promise<RouteReply> {
  const caller =
    route.access.kind === "public"
      ? undefined
      : await services.authenticator.authenticate(request.header("authorization"), {
          keyFromMemory: route.keyCheckedAtCommit === true,
        });
  try {
    return await handleAuthenticated(route, request, pathParams, services, caller);
  } catch (err) {
    // A key verified from memory is checked by the commit the route makes; any other answer
    // (an error before or instead of that commit) first makes sure the key still exists.
    if (caller) await services.authenticator.confirm(caller);
    throw err;
  }
}

async function handleAuthenticated(
  route: Route,
  request: ApiRequest,
  pathParams: Record<string, string>,
  services: ApiServices,
  caller: Caller | undefined,
): Promise<RouteReply> {
  const principal =
    caller && route.access.kind === "org"
      ? withScope(
          route.access.anyScope,
          await resolvePrincipal(services.store, caller, {
            org: request.header(ORG_HEADER),
            act: request.header(ACT_HEADER),
          }),
        )
      : undefined;
  const params = validate(route.params, pathParams, "path");
  const query = validate(route.query, route.query ? firstValues(request.query) : {}, "query");
  const body =
    route.body === undefined || route.body === "multipart"
      ? undefined
      : validate(
          route.body,
          (await readJsonBody(request.incoming, route.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES)) ??
            {},
          "body",
        );
  const result = await route.handle({
    params,
    query,
    body,
    // Typed as always present: routes read only what their access kind guarantees.
    caller: caller as Caller,
    principal: principal as Principal,
    request,
    services,
  });
  return route.status === 200 ? { status: 200, body: result } : { status: route.status };
}

/** The principal, if it holds one of the scopes a route needs (403 otherwise). */
function withScope(anyScope: readonly Scope[], principal: Principal): Principal {
  if (!anyScope.some((scope) => principal.scopes.has(scope))) {
    throw new ForbiddenError(
      "missing-scope",
      `this needs the ${anyScope.join(" or ")} scope, which the token's key lacks`,
    );
  }
  return principal;
}

/** Each query parameter's first value (a repeated one is not a list anywhere in this API). */
function firstValues(query: URLSearchParams): Record<string, string> {
  const values = new Map<string, string>();
  for (const [name, value] of query) if (!values.has(name)) values.set(name, value);
  // fromEntries defines own properties: a parameter named __proto__ stays a plain value.
  return Object.fromEntries(values);
}

function validate<T>(
  schema: z.ZodType<T> | undefined,
  value: unknown,
  location: string,
): T | undefined {
  if (!schema) return undefined;
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const path = issue?.path.map(String).join(".") ?? "";
  const parameter = path === "" ? location : path;
  throw new InvalidParameterError(parameter, `${parameter}: ${issue?.message ?? "invalid"}`);
}
