// The `backstate` program: commander with one file per command under commands/. The global
// options (--api-url, --token, --org, --data-dir, --json, --no-color) are declared here and work
// before or after the command. Exit codes are in errors.ts and in the help's epilogue.
import { readFileSync } from "node:fs";
import { Command, CommanderError, Option } from "commander";
import { registerIdentityProviders } from "./commands/identity-providers.js";
import { registerInstances } from "./commands/instances.js";
import { registerKeys } from "./commands/keys.js";
import { registerLogin } from "./commands/login.js";
import { registerMachines, registerMachineVersions } from "./commands/machines.js";
import { registerServe, SERVE_DEFAULTS } from "./commands/serve.js";
import { registerSmply } from "./commands/smply.js";
import { registerTokenProviders } from "./commands/token-providers.js";
import { registerTokens } from "./commands/tokens.js";
import { CliError, EXIT_CODES, EXIT_FAILURE, EXIT_USAGE } from "./errors.js";
import { colourFor, stopAllProgress } from "./output.js";
import { parseHttpUrl, parseOrgId, parsePath, parseToken } from "./parse.js";

/** Each command registers itself on the program: `program.command(name)…`. */
const COMMANDS: ReadonlyArray<(program: Command) => void> = [
  registerServe,
  registerLogin,
  registerMachines,
  registerMachineVersions,
  registerInstances,
  registerKeys,
  registerTokens,
  registerIdentityProviders,
  registerTokenProviders,
  registerSmply,
];

const EPILOGUE = `
Credentials: each of the server URL, the admin token and the org comes from the first of
  1. the flags --api-url, --token, --org (or BACKSTATE_API_URL, BACKSTATE_TOKEN, BACKSTATE_ORG);
  2. the login file of that server, written by \`backstate login\`:
     $BACKSTATE_HOME/credentials/<host>_<port>.json (BACKSTATE_HOME defaults to ~/.backstate);
  3. <data-dir>/credentials.json, written by \`backstate serve\` (when it names that server).
  Without --api-url the server is the one <data-dir>/credentials.json names, else the only
  server logged in to. \`backstate whoami\` shows what a command would use.

Output: tables for people (colours on a terminal, unless NO_COLOR or --no-color); --json prints
  one JSON document on stdout for scripts, and errors as JSON on stderr.

Exit codes:
${EXIT_CODES.map(([code, meaning]) => `  ${code}  ${meaning}`).join("\n")}
`;

/**
 * The program. With `jsonErrors`, commander prints no usage error of its own: `run` prints it as
 * the JSON `--json` promises on stderr.
 */
export function createProgram(options: { jsonErrors?: boolean } = {}): Command {
  const program = new Command("backstate")
    .description("Backstate: a self-hostable, State Backed-compatible XState backend")
    .version(version(), "-v, --version")
    .showHelpAfterError("(run with --help for usage)")
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .configureOutput(
      options.jsonErrors === true ? { outputError: () => {}, writeErr: () => {} } : {},
    )
    // Settings above are inherited by commands created with program.command(), so set them first.
    .exitOverride()
    .addOption(
      new Option("--api-url <url>", "the server's API URL")
        .env("BACKSTATE_API_URL")
        .argParser(parseHttpUrl),
    )
    .addOption(
      new Option("--token <token>", "an admin token (prefer BACKSTATE_TOKEN or `backstate login`)")
        .env("BACKSTATE_TOKEN")
        .argParser(parseToken),
    )
    .addOption(
      new Option("--org <org>", "the org to act in (org_…)")
        .env("BACKSTATE_ORG")
        .argParser(parseOrgId),
    )
    .addOption(
      new Option("--data-dir <dir>", "the server's data folder: database and credentials.json")
        .env("BACKSTATE_DATA_DIR")
        .default(SERVE_DEFAULTS.dataDir)
        .argParser(parsePath),
    )
    .option("--json", "print JSON for scripts instead of tables")
    .option("--no-color", "no colours (also: the NO_COLOR variable)")
    .addHelpText("after", EPILOGUE);
  for (const register of COMMANDS) register(program);
  return program;
}

/** Runs the program on `argv` (as process.argv: node, script, args…); answers the exit code. */
export async function run(argv: readonly string[]): Promise<number> {
  const json = argv.includes("--json");
  try {
    await createProgram({ jsonErrors: json }).parseAsync(argv);
    return 0;
  } catch (error) {
    stopAllProgress();
    if (error instanceof CommanderError) {
      // Help and --version end with code 0. Otherwise commander has printed the message, unless
      // --json asked for it as JSON.
      if (error.exitCode === 0) return 0;
      if (json) {
        const usage = new CliError(error.message.replace(/^error: /, ""), EXIT_USAGE);
        process.stderr.write(`${JSON.stringify(usage.toJSON())}\n`);
      }
      return EXIT_USAGE;
    }
    if (error instanceof CliError) {
      if (json) process.stderr.write(`${JSON.stringify(error.toJSON())}\n`);
      else {
        const colour = colourFor(process.stderr, !argv.includes("--no-color"));
        const label = colour ? "\x1b[31mbackstate:\x1b[39m" : "backstate:";
        const hint = error.hint
          ? `\n  ${colour ? "\x1b[2mhint:\x1b[22m" : "hint:"} ${error.hint}`
          : "";
        process.stderr.write(`${label} ${error.message}${hint}\n`);
      }
      return error.exitCode;
    }
    const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
    if (json) {
      process.stderr.write(
        `${JSON.stringify({ error: { message: text, exitCode: EXIT_FAILURE } })}\n`,
      );
    } else process.stderr.write(`backstate: ${text}\n`);
    return EXIT_FAILURE;
  }
}

function version(): string {
  // dist/src/program.js → the package's package.json, two folders up.
  try {
    const url = new URL("../../package.json", import.meta.url);
    return (JSON.parse(readFileSync(url, "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
}
