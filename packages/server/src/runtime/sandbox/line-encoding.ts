// Messages as the lines LineReader reads (line-reader.ts). No imports: the adapter, bundled for
// contexts without Node's modules, imports the protocol that uses these.

/** One message as a line. JSON.stringify escapes newlines inside strings, so framing holds. */
export function encodeLine(message: unknown): string {
  return `${JSON.stringify(message)}\n`;
}

/**
 * A message (`header`, which the reader's announcesBody must recognize) and its body, JSON text,
 * as two lines. JSON.stringify's output holds no raw newline; in any JSON text one can only be
 * whitespace between tokens (a string cannot hold one unescaped), so a space stands in for it:
 * the same JSON, on one line.
 */
export function encodeLineWithBody(header: unknown, body: string): string {
  const line = body.includes("\n") ? body.replaceAll("\n", " ") : body;
  return `${JSON.stringify(header)}\n${line}\n`;
}
