// The `backstate` program: commander with one file per command under commands/. Usage errors
// (unknown command or option, a bad flag value) exit 2; failures while running exit 1.
import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { registerServe } from "./commands/serve.js";
import { CliError, EXIT_FAILURE, EXIT_USAGE } from "./errors.js";

/** Each command registers itself on the program: `program.command(name)…`. */
const COMMANDS: ReadonlyArray<(program: Command) => void> = [registerServe];

export function createProgram(): Command {
  const program = new Command("backstate")
    .description("Backstate: a self-hostable, State Backed-compatible XState backend")
    .version(version(), "-v, --version")
    .showHelpAfterError("(run with --help for usage)")
    // Settings above are inherited by commands created with program.command(), so set them first.
    .exitOverride();
  for (const register of COMMANDS) register(program);
  return program;
}

/** Runs the program on `argv` (as process.argv: node, script, args…); answers the exit code. */
export async function run(argv: readonly string[]): Promise<number> {
  try {
    await createProgram().parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has printed the message already; help and --version end with code 0.
      return error.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    if (error instanceof CliError) {
      process.stderr.write(`backstate: ${error.message}\n`);
      return error.exitCode;
    }
    process.stderr.write(
      `backstate: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
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
