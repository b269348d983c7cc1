// `backstate identity-providers upsert|upsert-supabase|upsert-auth0|upsert-cognito|list|delete`:
// whose tokens the org accepts for token exchange (POST /tokens). An identity provider is
// identified by its aud and/or iss; it allows some algorithms, and verifies with a shared secret
// (HS*) or a JWKS URL (the others); its mapping turns the token's claims into what token providers
// map into Backstate tokens. The presets are smply's.
import { InvalidArgumentError, Option, type Command } from "commander";
import type { IdentityProvider, IdentityProviderUpsert } from "../api.js";
import { CliError, EXIT_USAGE } from "../errors.js";
import { compactJson, type Output } from "../output.js";
import {
  isHmacAlgorithm,
  parseAbsoluteUrl,
  parseAlgorithm,
  parseBase64Key,
  parseMapping,
  parseNonEmpty,
  SIGNING_ALGORITHMS,
  type JsonObject,
} from "../parse.js";
import { apiAction, examples, type ApiContext } from "./common.js";

/** What the presets map when no --mapping is given: the subject, and Supabase's email. */
const PRESET_MAPPING: JsonObject = { "sub.$": "$.sub" };
const SUPABASE_MAPPING: JsonObject = { "sub.$": "$.sub", "email.$": "$.email" };

const MAPPING_HELP =
  `the claims mapping, a JSON object: keys ending in .$ take a JSONPath into the token's ` +
  `claims, other keys are literals, e.g. '{"sub.$":"$.sub"}'`;

const mappingOption = (fallback?: JsonObject) => {
  const option = new Option(
    "--mapping <json>",
    fallback ? `${MAPPING_HELP} (default: ${JSON.stringify(fallback)})` : MAPPING_HELP,
  ).argParser(parseMapping);
  return fallback ? option : option.makeOptionMandatory();
};

type UpsertOptions = {
  aud?: string;
  iss?: string;
  alg: string[];
  key?: string;
  base64Key?: string;
  jwksUrl?: string;
  mapping: JsonObject;
};

export function registerIdentityProviders(program: Command): void {
  const idps = program
    .command("identity-providers")
    .description("identity providers whose tokens end users exchange for Backstate tokens");

  examples(
    idps
      .command("upsert")
      .description("create or update the identity provider with this aud and/or iss")
      .addOption(
        new Option("--aud <aud>", "the audience (aud) of its tokens").argParser(parseNonEmpty),
      )
      .addOption(
        new Option("--iss <iss>", "the issuer (iss) of its tokens").argParser(parseNonEmpty),
      )
      .addOption(
        new Option(
          "--alg <alg>",
          `an algorithm its tokens may be signed with (repeatable): ${SIGNING_ALGORITHMS.join(", ")}`,
        )
          .argParser(parseAlgorithm)
          .makeOptionMandatory(),
      )
      .addOption(
        new Option("--key <secret>", "the shared secret (UTF-8) that verifies HS256/384/512")
          .argParser(parseNonEmpty)
          .conflicts(["base64Key", "jwksUrl"]),
      )
      .addOption(
        new Option("--base64-key <base64>", "a binary shared secret, in base64 or base64url")
          .argParser(parseBase64Key)
          .conflicts(["jwksUrl"]),
      )
      .addOption(
        new Option(
          "--jwks-url <url>",
          "the https URL of its JSON Web Key Set (RS*, PS*, ES*, EdDSA)",
        ).argParser(parseAbsoluteUrl),
      )
      .addOption(mappingOption())
      .action(
        apiAction<UpsertOptions>(async (context, options) => {
          if (options.aud === undefined && options.iss === undefined) {
            throw new CliError("identity-providers upsert needs --aud, --iss or both", EXIT_USAGE);
          }
          const key =
            options.key !== undefined
              ? Buffer.from(options.key, "utf8").toString("base64url")
              : options.base64Key;
          if (key === undefined && options.jwksUrl === undefined) {
            throw new CliError(
              "identity-providers upsert needs --key (or --base64-key) or --jwks-url",
              EXIT_USAGE,
            );
          }
          const wrong = options.alg.filter((alg) => isHmacAlgorithm(alg) !== (key !== undefined));
          if (wrong.length > 0) {
            throw new CliError(
              key !== undefined
                ? `a shared secret verifies HS256, HS384 and HS512 only; ${wrong.join(", ")} need --jwks-url`
                : `${wrong.join(", ")} need a shared secret (--key), not --jwks-url`,
              EXIT_USAGE,
            );
          }
          await upsert(context, {
            ...(options.aud !== undefined ? { aud: options.aud } : {}),
            ...(options.iss !== undefined ? { iss: options.iss } : {}),
            algs: options.alg,
            ...(key !== undefined ? { key } : {}),
            ...(options.jwksUrl !== undefined ? { jwksUrl: options.jwksUrl } : {}),
            mapping: options.mapping,
          });
        }),
      ),
    [
      `backstate identity-providers upsert --iss https://id.example.com/ --alg HS256 --key "$SECRET" --mapping '{"sub.$":"$.sub"}'`,
      `backstate identity-providers upsert --aud api --iss https://id.example.com/ --alg RS256 --alg ES256 \\\n      --jwks-url https://id.example.com/.well-known/jwks.json --mapping '{"sub.$":"$.sub","roles.$":"$.roles"}'`,
    ],
  );

  examples(
    idps
      .command("upsert-supabase")
      .description(
        "the identity provider of a Supabase project: aud authenticated, iss https://<project>.supabase.co/auth/v1, HS256",
      )
      .addOption(
        new Option("--project <ref>", "the project's reference (its subdomain)")
          .argParser(parseSubdomain)
          .makeOptionMandatory(),
      )
      .addOption(
        new Option("--secret <secret>", "the project's JWT secret")
          .argParser(parseNonEmpty)
          .makeOptionMandatory(),
      )
      .addOption(mappingOption(SUPABASE_MAPPING))
      .action(
        apiAction<{ project: string; secret: string; mapping?: JsonObject }>(
          async (context, options) =>
            upsert(context, {
              aud: "authenticated",
              iss: `https://${options.project}.supabase.co/auth/v1`,
              algs: ["HS256"],
              key: Buffer.from(options.secret, "utf8").toString("base64url"),
              mapping: options.mapping ?? SUPABASE_MAPPING,
            }),
        ),
      ),
    [
      `backstate identity-providers upsert-supabase --project abcdefghijklmnop --secret "$JWT_SECRET"`,
    ],
  );

  examples(
    idps
      .command("upsert-auth0")
      .description(
        "the identity provider of an Auth0 tenant: aud https://<domain>/api/v2/, iss https://<domain>/, RS256 with its JWKS",
      )
      .addOption(
        new Option("--domain <domain>", "the tenant's domain, e.g. example.us.auth0.com")
          .argParser(parseDomain)
          .makeOptionMandatory(),
      )
      .addOption(mappingOption(PRESET_MAPPING))
      .action(
        apiAction<{ domain: string; mapping?: JsonObject }>(async (context, options) =>
          upsert(context, {
            aud: `https://${options.domain}/api/v2/`,
            iss: `https://${options.domain}/`,
            algs: ["RS256"],
            jwksUrl: `https://${options.domain}/.well-known/jwks.json`,
            mapping: options.mapping ?? PRESET_MAPPING,
          }),
        ),
      ),
    ["backstate identity-providers upsert-auth0 --domain example.us.auth0.com"],
  );

  examples(
    idps
      .command("upsert-cognito")
      .description(
        "the identity provider of a Cognito user pool: iss https://cognito-idp.<region>.amazonaws.com/<pool>, RS256 with its JWKS",
      )
      .addOption(
        new Option("--region <region>", "the user pool's AWS region, e.g. us-east-1")
          .argParser(parseSubdomain)
          .makeOptionMandatory(),
      )
      .addOption(
        new Option("--user-pool-id <id>", "the user pool's id, e.g. us-east-1_AbCdEfGhI")
          .argParser(parseUserPoolId)
          .makeOptionMandatory(),
      )
      .addOption(mappingOption(PRESET_MAPPING))
      .action(
        apiAction<{ region: string; userPoolId: string; mapping?: JsonObject }>(
          async (context, options) => {
            const iss = `https://cognito-idp.${options.region}.amazonaws.com/${options.userPoolId}`;
            await upsert(context, {
              iss,
              algs: ["RS256"],
              jwksUrl: `${iss}/.well-known/jwks.json`,
              mapping: options.mapping ?? PRESET_MAPPING,
            });
          },
        ),
      ),
    [
      "backstate identity-providers upsert-cognito --region us-east-1 --user-pool-id us-east-1_AbCdEfGhI",
    ],
  );

  idps
    .command("list")
    .description("list the org's identity providers (never their secrets)")
    .action(
      apiAction(async ({ api, out }) => {
        const list = await api.listIdentityProviders();
        out.print({ idps: list }, () =>
          list.length === 0
            ? "no identity providers yet: add one with `backstate identity-providers upsert`"
            : out.table(
                ["AUD", "ISS", "ALGS", "VERIFIED WITH", "MAPPING"],
                list.map((idp) => [
                  idp.aud ?? "-",
                  out.style.cyan(idp.iss ?? "-"),
                  idp.algs.join(","),
                  idp.jwksUrl ?? "shared secret",
                  compactJson(idp.mapping),
                ]),
              ),
        );
      }),
    );

  examples(
    idps
      .command("delete")
      .description(
        "delete the identity provider with exactly this aud and/or iss: its tokens stop exchanging at once",
      )
      .addOption(new Option("--aud <aud>", "its audience").argParser(parseNonEmpty))
      .addOption(new Option("--iss <iss>", "its issuer").argParser(parseNonEmpty))
      .action(
        apiAction<{ aud?: string; iss?: string }>(async ({ api, out }, options) => {
          if (options.aud === undefined && options.iss === undefined) {
            throw new CliError("identity-providers delete needs --aud, --iss or both", EXIT_USAGE);
          }
          const id = {
            ...(options.aud !== undefined ? { aud: options.aud } : {}),
            ...(options.iss !== undefined ? { iss: options.iss } : {}),
          };
          await api.deleteIdentityProvider(id);
          out.print({ ...id, deleted: true }, () => `deleted identity provider ${describe(id)}`);
        }),
      ),
    [
      "backstate identity-providers delete --aud authenticated --iss https://abcdefghijklmnop.supabase.co/auth/v1",
    ],
  );
}

async function upsert({ api, out }: ApiContext, body: IdentityProviderUpsert): Promise<void> {
  await api.upsertIdentityProvider(body);
  const { key, ...shown } = body;
  const saved: IdentityProvider = shown;
  out.print({ ...saved, saved: true }, () => details(out, saved, key !== undefined));
}

function details(out: Output, idp: IdentityProvider, secret: boolean): string {
  return [
    `saved identity provider ${describe(idp)}`,
    out.details([
      ["aud", idp.aud ?? "-"],
      ["iss", idp.iss ?? "-"],
      ["algs", idp.algs.join(", ")],
      ["verified with", idp.jwksUrl ?? (secret ? "shared secret" : "-")],
      ["mapping", compactJson(idp.mapping)],
    ]),
  ].join("\n");
}

function describe(id: { aud?: string | undefined; iss?: string | undefined }): string {
  return [id.aud !== undefined ? `aud ${id.aud}` : "", id.iss !== undefined ? `iss ${id.iss}` : ""]
    .filter(Boolean)
    .join(", ");
}

/** A Supabase project reference or an AWS region: one DNS label. */
function parseSubdomain(value: string): string {
  const label = value.trim().toLowerCase();
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(label)) {
    throw new InvalidArgumentError("Expected letters, digits and '-', e.g. us-east-1.");
  }
  return label;
}

/** A host name, with or without https:// (as smply took it). */
function parseDomain(value: string): string {
  const text = value.trim();
  let host: string | undefined;
  try {
    host = new URL(/^https?:\/\//i.test(text) ? text : `https://${text}`).hostname;
  } catch {
    host = undefined;
  }
  if (!host || !/^[a-z0-9.-]+$/i.test(host) || !host.includes(".")) {
    throw new InvalidArgumentError("Expected a domain, e.g. example.us.auth0.com.");
  }
  return host.toLowerCase();
}

function parseUserPoolId(value: string): string {
  const id = value.trim();
  if (!/^[\w-]+_[0-9a-zA-Z]+$/.test(id)) {
    throw new InvalidArgumentError("Expected a user pool id, e.g. us-east-1_AbCdEfGhI.");
  }
  return id;
}
