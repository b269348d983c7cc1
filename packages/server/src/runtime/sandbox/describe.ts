// Turns values thrown or logged by untrusted code into bounded strings. Everything here may run
// user getters and Proxy traps; callers are inside a try, and nothing here hands the value back.
import { inspect } from "node:util";

const MAX_MESSAGE_LENGTH = 8 * 1024;

function truncate(text: string): string {
  return text.length > MAX_MESSAGE_LENGTH ? `${text.slice(0, MAX_MESSAGE_LENGTH)}…` : text;
}

/** "Name: message" for an error-like value (from any realm), else its string form. */
export function describeThrown(value: unknown): string {
  try {
    if (typeof value === "object" && value !== null) {
      const { name, message } = value as { name?: unknown; message?: unknown };
      if (typeof message === "string") {
        return truncate(typeof name === "string" && name ? `${name}: ${message}` : message);
      }
    }
    return truncate(String(value));
  } catch {
    return "(an error that could not be described)";
  }
}

/**
 * Formats console arguments like a browser console would, roughly. `customInspect: false` keeps
 * user `[util.inspect.custom]` methods from being called with host objects as arguments.
 */
export function formatConsoleArgs(args: readonly unknown[]): string {
  const parts: string[] = [];
  for (const arg of args) {
    try {
      parts.push(
        typeof arg === "string"
          ? arg
          : inspect(arg, {
              depth: 4,
              customInspect: false,
              getters: false,
              showProxy: false,
              maxArrayLength: 50,
              maxStringLength: 2000,
              breakLength: Infinity,
            }),
      );
    } catch {
      parts.push("(unprintable)");
    }
  }
  return truncate(parts.join(" "));
}
