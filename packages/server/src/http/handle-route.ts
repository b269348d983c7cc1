// Runs one route for one request, in the order every endpoint shares: authenticate (401), pick
// the org and check the scope (403), validate path, query and body (400), then the handler.
import type { IncomingMessage } from "node:http";
import type { Context } from "hono";
import type { z } from "zod";
import { ACT_HEADER, ORG_HEADER, resolvePrincipal } from "../auth/resolve-principal.js";
import type { Caller, Principal } from "../auth/principal.js";
import { ForbiddenError, InvalidParameterError } from "../errors.js";
import { readJsonBody } from "./read-body.js";
import type { ApiServices, Route } from "./route.js";

const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;

/** What @hono/node-server puts in `c.env`: node's request, when running on node:http. */
type NodeBindings = { incoming?: IncomingMessage };

export async function handleRoute(
  route: Route,
  c: Context,
  services: ApiServices,
): Promise<Response> {
  const request = c.req.raw;
  const source = { request, incoming: (c.env as NodeBindings | undefined)?.incoming };
  const { caller, principal } = await authorize(route, request, services);
  const params = validate(route.params, c.req.param(), "path");
  const query = validate(route.query, c.req.query(), "query");
  const body =
    route.body === undefined || route.body === "multipart"
      ? undefined
      : validate(
          route.body,
          (await readJsonBody(source, route.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES)) ?? {},
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
    rawBody: source,
    services,
  });
  return route.status === 200 ? c.json(result) : c.body(null, route.status);
}

async function authorize(
  route: Route,
  request: Request,
  services: ApiServices,
): Promise<{ caller?: Caller; principal?: Principal }> {
  const { access } = route;
  if (access.kind === "public") return {};
  const headers = request.headers;
  const caller = await services.authenticator.authenticate(
    headers.get("authorization") ?? undefined,
  );
  if (access.kind === "user") return { caller };
  const principal = await resolvePrincipal(services.store, caller, {
    org: headers.get(ORG_HEADER) ?? undefined,
    act: headers.get(ACT_HEADER) ?? undefined,
  });
  if (!access.anyScope.some((scope) => principal.scopes.has(scope))) {
    throw new ForbiddenError(
      "missing-scope",
      `this needs the ${access.anyScope.join(" or ")} scope, which the token's key lacks`,
    );
  }
  return { caller, principal };
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
