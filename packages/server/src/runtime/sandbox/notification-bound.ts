// A notification (a service's event, an adapter's log line) is parsed on the server's main thread,
// which every org shares, and the machine decides how large it is (a callback's sendBack, a
// promise's result: up to the 64 MB a line may hold). So the sandbox bounds it here, in its own
// process, before writing it: a larger one goes out with its event cut down to its type, which
// the server then refuses as too large (as it refuses any event over the limit), or its message
// cut short; `chars` tells how large it was.

/** The largest notification that goes out whole: room for an event the server would store. */
export const MAX_NOTIFICATION_CHARS = 4 * 1024 * 1024 + 64 * 1024;

const MAX_CUT_MESSAGE_CHARS = 8 * 1024;
const MAX_CUT_TYPE_CHARS = 200;

/** `json` if it is within the bound, else its cut-down form, or undefined if it has none. */
export function boundedNotification(json: string): string | undefined {
  if (json.length <= MAX_NOTIFICATION_CHARS) return json;
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const fields = value as Record<string, unknown>;
  const cut: Record<string, unknown> = { ...fields, chars: json.length };
  if ("event" in fields) cut.event = { type: typeOf(fields.event) };
  if (typeof fields.message === "string") {
    cut.message = fields.message.slice(0, MAX_CUT_MESSAGE_CHARS);
  }
  const text = JSON.stringify(cut);
  return text.length <= MAX_NOTIFICATION_CHARS ? text : undefined;
}

function typeOf(event: unknown): string {
  const type =
    typeof event === "object" && event !== null ? (event as { type?: unknown }).type : undefined;
  return typeof type === "string" ? type.slice(0, MAX_CUT_TYPE_CHARS) : "unknown";
}
