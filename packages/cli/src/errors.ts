// Exit codes, and the error a command throws to fail with a plain message (no stack trace).

export const EXIT_FAILURE = 1;
/** A usage error: a bad flag or value, an unknown command. */
export const EXIT_USAGE = 2;

export class CliError extends Error {
  override name = "CliError";
  constructor(
    message: string,
    readonly exitCode: number = EXIT_FAILURE,
  ) {
    super(message);
  }
}
