// What the API commands share: the action wrapper that resolves the connection and output
// settings, the options several commands take, and help text helpers.
import { Option, type Command } from "commander";
import { ApiClient } from "../api.js";
import { resolveConnection, type Connection } from "../connection.js";
import { Output } from "../output.js";
import { parseJsonObject, parseName, type JsonObject } from "../parse.js";

export type ApiContext = {
  api: ApiClient;
  out: Output;
  connection: Connection;
  command: Command;
};

/** An action that talks to the server: (options, command) as commander calls it. */
export function apiAction<T>(
  run: (context: ApiContext, options: T) => Promise<void>,
): (options: T, command: Command) => Promise<void> {
  return async (options, command) => {
    const connection = resolveConnection(command);
    const out = Output.of(command);
    for (const warning of connection.warnings) out.warn(warning);
    await run({ api: new ApiClient(connection), out, connection, command }, options);
  };
}

/** An action that needs no server (tokens generate, machine-versions check). */
export function localAction<T>(
  run: (out: Output, options: T, command: Command) => Promise<void>,
): (options: T, command: Command) => Promise<void> {
  return (options, command) => run(Output.of(command), options, command);
}

export const machineOption = () =>
  new Option("-m, --machine <name>", "the machine's name")
    .argParser(parseName)
    .makeOptionMandatory();

export const instanceOption = () =>
  new Option("-i, --instance <name>", "the instance's name")
    .argParser(parseName)
    .makeOptionMandatory();

export const authContextOption = () =>
  new Option(
    "-a, --auth-context <json>",
    'act as this end user: the authContext the machine\'s allowRead/allowWrite see, e.g. \'{"sub":"alice"}\'',
  ).argParser(parseJsonObject);

export type AuthContextOptions = { authContext?: JsonObject };

/** "Examples:" after a command's help. */
export function examples(command: Command, lines: string[]): Command {
  return command.addHelpText(
    "after",
    `\nExamples:\n${lines.map((line) => `  $ ${line}`).join("\n")}\n`,
  );
}
