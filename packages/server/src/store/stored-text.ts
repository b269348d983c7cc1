// Which text from callers the store can keep as it was given, on SQLite and PostgreSQL alike.
// PostgreSQL's text cannot hold U+0000 (SQLite's can); both stores write UTF-8, in which a lone
// surrogate cannot be written (it would come back as U+FFFD); and a PostgreSQL btree entry holds
// at most about 2,700 bytes, so text in a key column is bounded in bytes, not only in characters.
// Routes check caller text against this before the store sees it. JSON (contexts, events,
// mappings) is not concerned: it is stored as JSON text, where both are written as escapes.

/**
 * The most UTF-8 bytes of caller text in one column of a primary key. An identity provider's
 * aud and iss share one with its org id: 2 × 1024 bytes and an id fit well within the 2,700.
 */
export const MAX_KEY_TEXT_BYTES = 1024;

/**
 * Why `text` cannot be stored as given, as a phrase to follow its name ("must …"), or undefined
 * when it can. `maxBytes` bounds its UTF-8 length (for key columns: MAX_KEY_TEXT_BYTES).
 */
export function unstorableTextProblem(text: string, maxBytes?: number): string | undefined {
  if (text.includes("\u0000")) return "must not contain U+0000 (NUL)";
  if (!text.isWellFormed()) return "must be well-formed Unicode (it holds a lone surrogate)";
  if (maxBytes !== undefined && Buffer.byteLength(text, "utf8") > maxBytes) {
    return `must be at most ${maxBytes} bytes as UTF-8`;
  }
  return undefined;
}
