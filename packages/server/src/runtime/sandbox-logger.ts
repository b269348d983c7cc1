// The logging port of the sandbox pool: sandbox output, machine console calls, protocol faults.

export type LogFields = Record<string, unknown>;

export type SandboxLogger = {
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
};

/** Used when the pool is given no logger: warnings and errors to stderr, the rest dropped. */
export const consoleWarningLogger: SandboxLogger = {
  info() {},
  warn: (message, fields) => console.warn(message, fields ?? ""),
  error: (message, fields) => console.error(message, fields ?? ""),
};
