// `backstate smply-credentials`: lets State Backed's own CLI, smply@0.1.18, drive this server.
// smply logs in only against the hosted Supabase; it reads $HOME/.smply/credentials as a stored
// Supabase session and $HOME/.smply/default-org as its org. This writes both from the admin
// credentials backstate resolves (see the shared reference cli-client.md §0, §2).
import { chmodSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { CliError, EXIT_AUTH } from "../errors.js";
import { apiAction, examples } from "./common.js";

/** 2100-01-01: an expiry smply's auth library never tries to refresh (it cannot: no Supabase). */
const FAR_FUTURE_SECONDS = 4_102_444_800;

export function registerSmply(program: Command): void {
  examples(
    program
      .command("smply-credentials")
      .description(
        "write $HOME/.smply/credentials and default-org so smply@0.1.18 uses this server",
      )
      .option("--home <dir>", "the HOME smply runs with (default: $HOME)")
      .action(
        apiAction<{ home?: string }>(async ({ api, out, connection }, options) => {
          out.progress.step(`Checking the token with ${connection.apiUrl}`);
          const orgs = await api.orgs();
          out.progress.stop();
          const orgId = connection.orgId ?? (orgs.length === 1 ? orgs[0]?.id : undefined);
          if (orgId === undefined) {
            throw new CliError(
              orgs.length === 0
                ? "this token's user belongs to no org"
                : "choose an org with --org",
              EXIT_AUTH,
            );
          }
          const home = resolve(options.home ?? homedir());
          const folder = join(home, ".smply");
          mkdirSync(folder, { recursive: true, mode: 0o700 });
          const expiresAt = tokenExpiry(connection.token) ?? FAR_FUTURE_SECONDS;
          // The minimal session gotrue-js accepts without calling Supabase.
          const session = {
            access_token: connection.token,
            refresh_token: "unused",
            expires_at: expiresAt,
          };
          const credentialsPath = join(folder, "credentials");
          const defaultOrgPath = join(folder, "default-org");
          writePrivate(credentialsPath, JSON.stringify(session));
          writePrivate(defaultOrgPath, orgId);
          const smply = `smply --api-url ${connection.apiUrl}`;
          out.print(
            {
              apiUrl: connection.apiUrl,
              orgId,
              credentialsPath,
              defaultOrgPath,
              expiresAt: new Date(expiresAt * 1000).toISOString(),
            },
            () =>
              [
                `wrote ${credentialsPath} and ${defaultOrgPath} (org ${orgId})`,
                "",
                "Run smply with this server's URL, and never with -t/--access-token:",
                `  ${smply} machines list`,
                `  ${smply} instances create --machine M --instance I --auth-context '{"sub":"I"}'`,
                ...(options.home !== undefined
                  ? ["", `with HOME=${home} in smply's environment`]
                  : []),
              ].join("\n"),
          );
        }),
      ),
    [
      "backstate smply-credentials && npx smply --api-url http://127.0.0.1:7600 machines list",
      "backstate smply-credentials --home /tmp/smply-home",
    ],
  );
}

function tokenExpiry(token: string): number | undefined {
  try {
    const payload = JSON.parse(
      Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8"),
    ) as { exp?: unknown };
    return typeof payload.exp === "number" && payload.exp > Date.now() / 1000 + 3600
      ? payload.exp
      : undefined;
  } catch {
    return undefined;
  }
}

function writePrivate(path: string, text: string): void {
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, text, { mode: 0o600 });
  chmodSync(temporary, 0o600);
  renameSync(temporary, path);
}
