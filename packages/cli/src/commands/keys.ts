// `backstate keys create|list|delete`: the org's signing keys. Apps sign end-user tokens with a
// key (see `backstate tokens generate`); its secret is shown once, when it is created.
import { Option, type Command } from "commander";
import { CliError, EXIT_USAGE } from "../errors.js";
import { shortDate } from "../output.js";
import { parseKeyId, parseNonEmpty, parseScope } from "../parse.js";
import { apiAction, examples } from "./common.js";

export function registerKeys(program: Command): void {
  const keys = program.command("keys").description("create, list and delete signing keys");

  examples(
    keys
      .command("create")
      .description("create a key and print its id and secret (shown only this once)")
      .addOption(
        new Option("-n, --name <name>", "a name to recognise the key by")
          .makeOptionMandatory()
          .argParser(parseNonEmpty),
      )
      .addOption(
        new Option("--use <preset>", "a preset: production (end-user tokens) or ci (deployments)")
          .choices(["production", "ci"])
          .conflicts("scope"),
      )
      .addOption(
        new Option(
          "--scope <scope>",
          "a scope the key grants, such as state.read (repeatable)",
        ).argParser(parseScope),
      )
      .action(
        apiAction<{ name: string; use?: string; scope?: string[] }>(
          async ({ api, out }, options) => {
            if (options.use === undefined && options.scope === undefined) {
              throw new CliError(
                "keys create needs --use production|ci or at least one --scope",
                EXIT_USAGE,
              );
            }
            const created = await api.createKey({
              name: options.name,
              ...(options.use !== undefined ? { use: options.use } : { scopes: options.scope }),
            });
            out.print({ ...created, name: options.name }, () =>
              out.details([
                ["key id", out.style.cyan(created.id)],
                ["secret", created.key],
                ["name", options.name],
              ]),
            );
            out.note(out.style.yellow("The secret is shown only this once: store it now."));
          },
        ),
      ),
    [
      "backstate keys create --name web --use production",
      "backstate keys create --name reader --scope state.read --scope events.write --json",
    ],
  );

  keys
    .command("list")
    .description("list the org's keys (never their secrets)")
    .action(
      apiAction(async ({ api, out }) => {
        const list = await api.listKeys();
        out.print({ keys: list }, () =>
          list.length === 0
            ? "no keys yet: create one with `backstate keys create --name NAME --use production`"
            : out.table(
                ["ID", "NAME", "SCOPES", "CREATED"],
                list.map((key) => [
                  out.style.cyan(key.id),
                  key.name,
                  key.scopes.join(","),
                  shortDate(key.createdAt),
                ]),
              ),
        );
      }),
    );

  examples(
    keys
      .command("delete")
      .description("delete a key: tokens signed with it stop working at once")
      .addOption(
        new Option("-k, --key <id>", "the key's id (sbk_…)")
          .argParser(parseKeyId)
          .makeOptionMandatory(),
      )
      .action(
        apiAction<{ key: string }>(async ({ api, out }, options) => {
          await api.deleteKey(options.key);
          out.print({ id: options.key, deleted: true }, () => `deleted key ${options.key}`);
        }),
      ),
    ["backstate keys delete --key sbk_nXzdtCxESemgtxS5JX-LrA"],
  );
}
