// `backstate tokens generate`: signs an end-user token with a key, locally (no server call), as
// an app's backend does with signToken from @backstate/token.
import { Option, type Command } from "commander";
import { CliError, EXIT_USAGE } from "../errors.js";
import { parseDuration, parseJsonObject, parseKeyId, type JsonObject } from "../parse.js";
import { examples, localAction } from "./common.js";

type Options = {
  key: string;
  secret: string;
  claims: JsonObject;
  expires: string;
  issuer?: string;
};

export function registerTokens(program: Command): void {
  const tokens = program.command("tokens").description("end-user tokens");
  examples(
    tokens
      .command("generate")
      .description("sign an end-user token with a key (the claims become the authContext)")
      .addOption(
        new Option("-k, --key <id>", "the key's id (sbk_…)")
          .env("BACKSTATE_KEY_ID")
          .argParser(parseKeyId)
          .makeOptionMandatory(),
      )
      .addOption(
        new Option("-s, --secret <secret>", "the key's secret (sbsec_…)")
          .env("BACKSTATE_KEY_SECRET")
          .makeOptionMandatory(),
      )
      .addOption(
        new Option("-c, --claims <json>", `the end user's claims, e.g. '{"sub":"alice"}'`)
          .argParser(parseJsonObject)
          .makeOptionMandatory(),
      )
      .addOption(
        new Option("--expires <duration>", "how long the token lives: 30m, 12h, 7d …")
          .argParser(parseDuration)
          .default("1h"),
      )
      .option("--issuer <iss>", "the token's iss claim (default: derived from the key id)")
      .action(
        localAction<Options>(async (out, options) => {
          const { signToken } = await import("@backstate/token");
          let token: string;
          try {
            token = await signToken(
              { stateBackedKeyId: options.key, stateBackedSecretKey: options.secret },
              options.claims,
              {
                // parseDuration checked the form; signToken checks it again.
                expires: { in: options.expires as `${number}h` },
                ...(options.issuer !== undefined ? { issuer: options.issuer } : {}),
              },
            );
          } catch (error) {
            throw new CliError(`cannot sign the token: ${(error as Error).message}`, EXIT_USAGE);
          }
          const payload = JSON.parse(
            Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8"),
          ) as { exp: number };
          // A long enough --expires (300000y) lands past the last moment a Date can hold, where
          // toISOString throws a RangeError; no one means that, so it is a bad value.
          const expiry = new Date(payload.exp * 1000);
          if (Number.isNaN(expiry.getTime())) {
            throw new CliError(
              `--expires ${options.expires} ends after the latest date a token can carry; choose a shorter lifetime`,
              EXIT_USAGE,
            );
          }
          const expiresAt = expiry.toISOString();
          out.print({ token, expiresAt, claims: options.claims }, () => token);
        }),
      ),
    [
      `backstate tokens generate --key sbk_… --secret sbsec_… --claims '{"sub":"alice"}' --expires 12h`,
      `BACKSTATE_KEY_ID=sbk_… BACKSTATE_KEY_SECRET=sbsec_… backstate tokens generate -c '{"sub":"bob"}'`,
    ],
  );
}
