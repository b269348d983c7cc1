// Splits a byte stream into newline-delimited JSON values, with a cap on line length. Used on both
// sides of the sandbox pipes; it never throws on bad input (the other side may be hostile), it
// reports it. A message may announce a body: the raw line right after it, taken as it is (see
// line-encoding.ts), so that JSON text inside a message is neither escaped nor parsed twice.
import { StringDecoder } from "node:string_decoder";

export type LineReaderEvents = {
  /** A complete line that parsed as JSON, with the line after it if it announced a body. */
  value(value: unknown, body: string | undefined): void;
  /** A complete line that did not parse; `preview` is its start, for logs. */
  malformed(preview: string): void;
  /** The buffered line grew past the cap: the stream is unusable from here on. */
  overflow(): void;
};

export class LineReader {
  readonly #decoder = new StringDecoder("utf8");
  readonly #maxLineLength: number;
  readonly #events: LineReaderEvents;
  /** The start of the current line, in pieces: each chunk is scanned once, never re-joined. */
  #pending: string[] = [];
  #pendingLength = 0;
  #overflowed = false;
  readonly #announcesBody: (value: unknown) => boolean;
  /** A message that announced a body, waiting for the line that is it. */
  #awaitingBody: { value: unknown } | undefined;

  /**
   * `maxLineLength` counts UTF-16 code units, which is what the buffer holds (a body is a line of
   * its own, under the same cap). `announcesBody` tells the messages a body line follows.
   */
  constructor(
    maxLineLength: number,
    events: LineReaderEvents,
    announcesBody: (value: unknown) => boolean = () => false,
  ) {
    this.#maxLineLength = maxLineLength;
    this.#events = events;
    this.#announcesBody = announcesBody;
  }

  push(chunk: Buffer | string): void {
    if (this.#overflowed) return;
    const text = typeof chunk === "string" ? chunk : this.#decoder.write(chunk);
    let start = 0;
    for (;;) {
      const end = text.indexOf("\n", start);
      if (end === -1) break;
      if (!this.#append(text.slice(start, end))) return;
      const line = this.#pending.join("");
      this.#pending = [];
      this.#pendingLength = 0;
      this.#line(line);
      start = end + 1;
    }
    this.#append(text.slice(start));
  }

  /** Buffers part of a line; false (and overflow reported) once the line is too long. */
  #append(piece: string): boolean {
    if (piece.length === 0) return true;
    this.#pendingLength += piece.length;
    if (this.#pendingLength > this.#maxLineLength) {
      this.#overflowed = true;
      this.#pending = [];
      this.#events.overflow();
      return false;
    }
    this.#pending.push(piece);
    return true;
  }

  #line(line: string): void {
    const awaiting = this.#awaitingBody;
    if (awaiting !== undefined) {
      this.#awaitingBody = undefined;
      this.#events.value(awaiting.value, line);
      return;
    }
    if (line.length === 0) return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      this.#events.malformed(line.slice(0, 200));
      return;
    }
    if (this.#announcesBody(value)) this.#awaitingBody = { value };
    else this.#events.value(value, undefined);
  }
}
