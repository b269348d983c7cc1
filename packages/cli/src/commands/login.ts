// `backstate login`, `logout` and `whoami`: credentials per server. login checks the token
// against the server, then keeps {apiUrl, orgId, adminToken} in
// <BACKSTATE_HOME or ~/.backstate>/credentials/<host>_<port>.json (mode 0600).
import { rmSync } from "node:fs";
import type { Command } from "commander";
import { ApiClient } from "../api.js";
import { globalOptions, sameServer } from "../connection.js";
import {
  backstateHome,
  listLogins,
  loginCredentialsPath,
  readCredentials,
  writeCredentials,
} from "../credentials.js";
import { CliError, EXIT_AUTH, EXIT_NOT_FOUND, EXIT_USAGE } from "../errors.js";
import { Output } from "../output.js";
import { apiAction, examples } from "./common.js";

export function registerLogin(program: Command): void {
  examples(
    program
      .command("login")
      .description(
        "check an admin token against a server and keep it for that server (with the global --api-url, --token, --org)",
      )
      .action(async (_options: unknown, command: Command) => {
        const { apiUrl, token, org } = globalOptions(command);
        if (apiUrl === undefined || token === undefined) {
          throw new CliError(
            "login needs --api-url URL and --token TOKEN (or BACKSTATE_API_URL and BACKSTATE_TOKEN)",
            EXIT_USAGE,
          );
        }
        const out = Output.of(command);
        out.progress.step(`Checking the token with ${apiUrl}`);
        const orgs = await new ApiClient({ apiUrl, token, orgId: undefined }).orgs();
        out.progress.stop();
        let orgId = org;
        if (orgId === undefined) {
          const [only, second] = orgs;
          if (!only) throw new CliError("this token's user belongs to no org", EXIT_AUTH);
          if (second) {
            throw new CliError(
              `this token's user belongs to several orgs (${orgs.map((o) => o.id).join(", ")})`,
              EXIT_USAGE,
              "choose one with --org ORG",
            );
          }
          orgId = only.id;
        } else if (!orgs.some((candidate) => candidate.id === orgId)) {
          throw new CliError(`this token's user is not a member of ${orgId}`, EXIT_AUTH);
        }
        const path = loginCredentialsPath(apiUrl);
        writeCredentials(path, { apiUrl, orgId, adminToken: token });
        out.print(
          { apiUrl, orgId, credentialsPath: path },
          () => `logged in to ${apiUrl} (org ${orgId})\ncredentials saved in ${path}`,
        );
      }),
    [
      "backstate login --api-url https://backstate.example.com --token $ADMIN_TOKEN",
      "BACKSTATE_TOKEN=$(jq -r .adminToken .backstate/credentials.json) backstate login --api-url http://127.0.0.1:7600",
    ],
  );

  program
    .command("logout")
    .description("forget the login for a server (--api-url; default: the only one)")
    .action((_options: unknown, command: Command) => {
      const { apiUrl } = globalOptions(command);
      const out = Output.of(command);
      const logins = listLogins();
      const target =
        apiUrl === undefined
          ? logins.length === 1
            ? logins[0]
            : undefined
          : logins.find((login) => sameServer(login.credentials.apiUrl, apiUrl));
      if (!target) {
        const path = apiUrl === undefined ? undefined : loginCredentialsPath(apiUrl);
        if (path !== undefined && readCredentials(path) !== undefined) {
          rmSync(path, { force: true });
          out.print({ apiUrl, removed: path }, () => `logged out of ${apiUrl}`);
          return;
        }
        throw new CliError(
          apiUrl === undefined
            ? logins.length === 0
              ? `not logged in to any server (${backstateHome()})`
              : "logged in to several servers: choose one with --api-url"
            : `not logged in to ${apiUrl}`,
          EXIT_USAGE,
        );
      }
      rmSync(target.path, { force: true });
      out.print(
        { apiUrl: target.credentials.apiUrl, removed: target.path },
        () => `logged out of ${target.credentials.apiUrl} (removed ${target.path})`,
      );
    });

  program
    .command("whoami")
    .description("show which server, org and credentials commands use, and check them")
    .action(
      apiAction(async ({ api, out, connection }) => {
        const orgs = await api.orgs();
        const org =
          connection.orgId !== undefined
            ? orgs.find((candidate) => candidate.id === connection.orgId)
            : orgs.length === 1
              ? orgs[0]
              : undefined;
        const { apiUrl, sources, files } = connection;
        // Checked as every other command would find it: an org of someone else's is not found.
        if (connection.orgId !== undefined && org === undefined) {
          throw new CliError(
            `org ${connection.orgId} (from ${sources.orgId ?? "the server"}) is not one of this token's orgs`,
            EXIT_NOT_FOUND,
          );
        }
        out.print(
          { apiUrl, orgId: org?.id ?? connection.orgId ?? null, org: org ?? null, sources, files },
          () =>
            out.details([
              ["server", `${apiUrl} ${out.style.dim(`(from ${sources.apiUrl})`)}`],
              [
                "org",
                `${org ? `${org.id} ${org.name} (${org.role})` : (connection.orgId ?? "(any)")} ` +
                  out.style.dim(`(from ${sources.orgId ?? "the server"})`),
              ],
              ["token", out.style.dim(`from ${sources.token}`)],
              ["files", files.length > 0 ? files.join("\n") : "-"],
            ]),
        );
      }),
    );
}
