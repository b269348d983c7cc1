// Calls the bundle's allowRead / allowWrite. Only a literal `true` allows: a false, a throw, a
// promise or any other value denies, and the reason is kept for the logs.

export type Decision = { allowed: true } | { allowed: false; reason: string };

export function authorize(
  authorizer: unknown,
  name: string,
  args: Record<string, unknown>,
): Decision {
  if (typeof authorizer !== "function") {
    return { allowed: false, reason: `the machine does not export ${name}` };
  }
  let result: unknown;
  try {
    result = (authorizer as (a: unknown) => unknown)(args);
  } catch (err) {
    return { allowed: false, reason: `${name} threw: ${describe(err)}` };
  }
  if (result === true) return { allowed: true };
  if (result === false) return { allowed: false, reason: `${name} returned false` };
  return { allowed: false, reason: `${name} returned ${typeof result}, not a boolean` };
}

/**
 * What was thrown, as text. A value that cannot be printed (no prototype, a throwing getter) is
 * named so rather than throwing again: an authorizer's throw must only deny.
 */
function describe(thrown: unknown): string {
  try {
    return thrown instanceof Error ? String(thrown.message) : String(thrown);
  } catch {
    return "a value that cannot be printed";
  }
}
