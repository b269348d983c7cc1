// POST /tokens: token exchange (RFC 8693), form-encoded as the official client sends it, with no
// authorization: the subject token is the credential. Its errors are OAuth errors, whose body is
// decided in auth/token-exchange/oauth-error.ts; this route turns every failure into one.
import { z } from "zod";
import { TokenExchange, toOAuthError } from "../../auth/token-exchange/exchange.js";
import { OAuthError } from "../../auth/token-exchange/oauth-error.js";
import { readBodyBytes } from "../read-body.js";
import { route, type ApiServices } from "../route.js";

const MAX_FORM_BYTES = 64 * 1024;

/** The services' token exchange, made with the default (strict) options when none was given. */
export function tokenExchangeOf(services: ApiServices): TokenExchange {
  services.tokenExchange ??= new TokenExchange({
    store: services.store,
    clock: services.clock,
    logger: services.logger,
  });
  return services.tokenExchange;
}

export const tokenRoutes = [
  route({
    method: "POST",
    path: "/tokens",
    summary:
      "Exchange an identity provider's token for one signed by a token provider's key " +
      "(RFC 8693; form-encoded grant_type, audience https://tokens.statebacked.dev/<orgId>/" +
      "<service>, subject_token, requested_token_type). Errors: { error, error_description, code }",
    access: { kind: "public" },
    noStore: true,
    status: 200,
    response: z.object({
      access_token: z.string(),
      issued_token_type: z.literal("urn:ietf:params:oauth:token-type:access_token"),
      token_type: z.literal("Bearer"),
      expires_in: z.number(),
    }),
    async handle({ request, services }) {
      try {
        const type = request.header("content-type") ?? "";
        if (!/^application\/x-www-form-urlencoded\s*(;|$)/i.test(type)) {
          throw new OAuthError(
            "invalid_request",
            "invalid-parameter",
            "send the parameters form-encoded (content-type application/x-www-form-urlencoded)",
          );
        }
        const bytes = await readBodyBytes(request.incoming, MAX_FORM_BYTES);
        let text: string;
        try {
          text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
        } catch {
          throw new OAuthError("invalid_request", "invalid-parameter", "the body is not UTF-8");
        }
        return await tokenExchangeOf(services).exchange(new URLSearchParams(text));
      } catch (error) {
        throw toOAuthError(error, services.logger);
      }
    },
  }),
];
