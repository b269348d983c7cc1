// Text a machine chose (a failure message, an authorizer's reason, a log line), as the server keeps
// it: cut to a bound, saying how much was cut. The sandbox cuts what it describes too, but it runs
// the machine's code: the server cuts again, in this one place.

/** The most characters of a machine's text the server keeps. */
export const MAX_MACHINE_TEXT_CHARS = 8_192;

/** `text` cut to `max` characters, with how many more there were. */
export function cutMachineText(text: string, max: number = MAX_MACHINE_TEXT_CHARS): string {
  return text.length <= max
    ? text
    : `${text.slice(0, max)}… (${text.length - max} more characters)`;
}
