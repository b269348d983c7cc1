// `backstate token-providers upsert|list|delete`: what token exchange answers for a service. A
// token provider names the key its tokens are signed with (they get the key's scopes) and the
// mapping from the identity provider's mapped claims to the tokens' claims (the authContext).
import { Option, type Command } from "commander";
import { compactJson } from "../output.js";
import { parseKeyId, parseMapping, parseName, type JsonObject } from "../parse.js";
import { apiAction, examples } from "./common.js";

const serviceOption = () =>
  new Option(
    "-s, --service <service>",
    "the service's name: exchanges ask for the audience https://tokens.statebacked.dev/<org>/<service>",
  )
    .argParser(parseName)
    .makeOptionMandatory();

export function registerTokenProviders(program: Command): void {
  const providers = program
    .command("token-providers")
    .description("token providers: the Backstate tokens that token exchange issues, per service");

  examples(
    providers
      .command("upsert")
      .description("create or update the token provider of a service")
      .addOption(serviceOption())
      .addOption(
        new Option(
          "-k, --key-id <id>",
          "the key (sbk_…) that signs its tokens; they get its scopes",
        )
          .argParser(parseKeyId)
          .makeOptionMandatory(),
      )
      .addOption(
        new Option(
          "-m, --mapping <json>",
          `the tokens' claims from the identity provider's mapped claims: keys ending in .$ take ` +
            `a JSONPath, other keys are literals, e.g. '{"sub.$":"$.sub"}'`,
        )
          .argParser(parseMapping)
          .makeOptionMandatory(),
      )
      .action(
        apiAction<{ service: string; keyId: string; mapping: JsonObject }>(
          async ({ api, out, connection }, options) => {
            const provider = {
              service: options.service,
              keyId: options.keyId,
              mapping: options.mapping,
            };
            await api.upsertTokenProvider(provider);
            const audience =
              connection.orgId !== undefined
                ? `https://tokens.statebacked.dev/${connection.orgId}/${options.service}`
                : undefined;
            out.print({ ...provider, saved: true }, () =>
              [
                `saved token provider ${options.service}`,
                out.details([
                  ["key", out.style.cyan(options.keyId)],
                  ["mapping", compactJson(options.mapping)],
                  ...(audience !== undefined ? [["audience", audience] as const] : []),
                ]),
              ].join("\n"),
            );
          },
        ),
      ),
    [
      `backstate token-providers upsert --service web --key-id sbk_nXzdtCxESemgtxS5JX-LrA --mapping '{"sub.$":"$.sub"}'`,
    ],
  );

  providers
    .command("list")
    .description("list the org's token providers")
    .action(
      apiAction(async ({ api, out }) => {
        const list = await api.listTokenProviders();
        out.print({ tokenProviders: list }, () =>
          list.length === 0
            ? "no token providers yet: add one with `backstate token-providers upsert`"
            : out.table(
                ["SERVICE", "KEY", "MAPPING"],
                list.map((provider) => [
                  out.style.cyan(provider.service),
                  provider.keyId,
                  compactJson(provider.mapping),
                ]),
              ),
        );
      }),
    );

  examples(
    providers
      .command("delete")
      .description("delete the token provider of a service: its exchanges stop at once")
      .addOption(serviceOption())
      .action(
        apiAction<{ service: string }>(async ({ api, out }, options) => {
          await api.deleteTokenProvider(options.service);
          out.print(
            { service: options.service, deleted: true },
            () => `deleted token provider ${options.service}`,
          );
        }),
      ),
    ["backstate token-providers delete --service web"],
  );
}
