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
  /**
   * Calls `then` once the stream has written every line given so far (at once when it has): a
   * line the stream holds, behind a write the pipe has not taken yet, is not written.
   */
  afterWritten: (then: () => void) => void;
};

export function batchedWriter(stream: Writable): LineWriter {
  let corked = false;
  /** Lines given to the stream whose write has not completed (or failed) yet. */
  let unwritten = 0;
  let waiting: Array<() => void> = [];
  const written = () => {
    if (--unwritten > 0) return;
    const callbacks = waiting;
    waiting = [];
    for (const then of callbacks) then();
  };
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
      unwritten++;
      // Called once the line is written, or failed to be (the stream destroyed): never twice.
      stream.write(line, written);
    },
    flush,
    afterWritten: (then) => {
      if (unwritten === 0) then();
      else waiting.push(then);
    },
  };
}
