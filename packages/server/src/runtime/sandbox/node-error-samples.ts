// Errors of the classes Node throws at machine code. Node gives each error code a class of its own
// (ERR_INVALID_ARG_VALUE, …, one per base class it is thrown as), whose prototype carries the
// errors' `toString`, and keeps them where nothing leads: only an error thrown leads to its class.
// One class serves every version of a sandbox process; left open, one version could take over
// the `toString` of another's errors and read what their messages quote of its data
// ("Received 'the-secret'"). So the sandbox provokes one error of each class machine code can be
// thrown, as it starts, for harden.ts to freeze.
import { Readable } from "node:stream";
import { finished } from "node:stream/promises";

/** Misuses of what machine code is offered (and of Node's streams behind it), one per class. */
const MISUSES: ReadonlyArray<() => unknown> = [
  () => new CompressionStream("no-such-format" as never), // ERR_INVALID_ARG_VALUE
  () => new TransformStream({ readableType: "no-such-type" } as never), // the same, RangeError
  () => new Blob(1 as never), // ERR_INVALID_ARG_TYPE
  () => AbortSignal.any(1 as never), // the same, as validators throw it
  () => Blob.prototype.text.call({} as Blob), // ERR_INVALID_THIS
  () => new (Event as new () => Event)(), // ERR_MISSING_ARGS
  () => new (AbortSignal as unknown as new () => AbortSignal)(), // ERR_ILLEGAL_CONSTRUCTOR
  () => new ReadableStream().getReader({ mode: "no-such-mode" } as never),
  () => {
    const stream = new ReadableStream();
    stream.getReader();
    return stream.getReader(); // ERR_INVALID_STATE
  },
  () => new TextDecoder("no-such-encoding"), // ERR_ENCODING_NOT_SUPPORTED
  () => new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array([255])),
  () => new URL("no-such-url"), // ERR_INVALID_URL
  () => new URLSearchParams([[1]] as never), // ERR_INVALID_TUPLE
  () => AbortSignal.timeout(-1), // ERR_OUT_OF_RANGE
  () => finished(new Readable(), { signal: AbortSignal.abort() }), // Node's AbortError
  () => {
    const stream = new Readable({ read() {} });
    const done = finished(stream);
    stream.destroy();
    return done; // ERR_STREAM_PREMATURE_CLOSE
  },
];

/** One error of each class MISUSES lead to; a misuse that no longer throws is left out. */
export async function nodeErrorSamples(): Promise<unknown[]> {
  const errors: unknown[] = [];
  for (const misuse of MISUSES) {
    try {
      await misuse();
    } catch (error) {
      errors.push(error);
    }
  }
  return errors;
}
