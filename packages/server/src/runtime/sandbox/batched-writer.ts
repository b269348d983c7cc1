// Writes lines to a stream, coalescing those written in one turn of the event loop into one
// write: the stream is corked at the first line and uncorked from setImmediate, after the I/O
// callbacks of the turn. Under load each pipe write costs a syscall and a wake-up of the reader,
// so one writev per turn instead of one write per message halves the IPC cost on small machines.
import type { Writable } from "node:stream";

export type LineWriter = {
  write: (line: string) => void;
  /**
   * Sends the lines written so far now, without waiting for the end of the turn. Answers whether
   * the stream passed them all on: not while an earlier write waits for the pipe to drain (the
   * reader is behind), which only a turn of the event loop lets the stream finish.
   */
  flush: () => boolean;
};

export function batchedWriter(stream: Writable): LineWriter {
  let corked = false;
  const flush = () => {
    if (corked) {
      corked = false;
      stream.uncork();
    }
    return stream.writableLength === 0;
  };
  return {
    write: (line) => {
      if (!corked) {
        corked = true;
        stream.cork();
        // A flush before then leaves this with nothing to do (or a later cork of its turn).
        setImmediate(flush);
      }
      stream.write(line);
    },
    flush,
  };
}
