// Runs test files a few at a time, each in its own process under a time limit, and prints each
// file's output whole and in order (the first file still running is shown live).
import { runTestFile } from "./run-test-file.js";

/** Writes each file's output in file order though the files end in any order. */
function orderedOutput(count, out) {
  const held = Array.from({ length: count }, () => []);
  const ended = new Array(count).fill(false);
  let live = 0;
  return {
    write(index, chunk) {
      if (index === live) out.write(chunk);
      else held[index].push(chunk);
    },
    end(index) {
      ended[index] = true;
      while (live < count && ended[live]) {
        live++;
        for (const chunk of held[live] ?? []) out.write(chunk);
        held[live] = [];
      }
    },
  };
}

/**
 * Runs `files` with at most `concurrency` at once and resolves to one result per file, in
 * order. A file still running after `timeoutMs` is killed and counts as failed.
 */
export async function runTestFiles(files, { concurrency, timeoutMs, nodeArgs, out, signal }) {
  const output = orderedOutput(files.length, out);
  const results = new Array(files.length);
  let next = 0;
  const worker = async () => {
    while (next < files.length && !signal?.aborted) {
      const index = next++;
      const file = files[index];
      // Node's output for one file does not name it.
      output.write(index, `# test file: ${file}\n`);
      let text = "";
      const result = await runTestFile(file, {
        timeoutMs,
        nodeArgs,
        signal,
        onOutput: (chunk) => {
          text += chunk;
          output.write(index, chunk);
        },
      });
      result.counts = countsOf(text);
      if (result.timedOut) {
        output.write(
          index,
          `\n✖ ${file} timed out: still running after ${timeoutMs} ms, so it was killed with ` +
            `every process it started (BACKSTATE_TEST_FILE_TIMEOUT_MS sets the limit)\n`,
        );
      }
      results[index] = result;
      output.end(index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, files.length) }, worker));
  return results;
}

const COUNTED = ["tests", "pass", "fail", "cancelled", "skipped", "todo"];

/**
 * The totals a file's run ends with (`# tests 12` in TAP, `ℹ tests 12` in spec), each 0 when
 * missing (a file killed or crashed before its summary).
 */
export function countsOf(text) {
  const counts = Object.fromEntries(COUNTED.map((name) => [name, 0]));
  for (const match of text.matchAll(/^(?:# |ℹ )(\w+) (\d+)$/gm)) {
    if (COUNTED.includes(match[1])) counts[match[1]] = Number(match[2]);
  }
  return counts;
}

/** The tests' totals over every file, one line per failed file, and a count of the files. */
export function summarize(results) {
  const ran = results.filter(Boolean);
  const failed = ran.filter((result) => !result.passed);
  const totals = Object.fromEntries(
    COUNTED.map((name) => [
      name,
      ran.reduce((sum, result) => sum + (result.counts?.[name] ?? 0), 0),
    ]),
  );
  const tally = COUNTED.map((name) => `${name} ${totals[name]}`).join(", ");
  const lines = failed.map((result) =>
    result.timedOut ? `  ${result.file}: timed out` : `  ${result.file}: ${result.exit}`,
  );
  const head = failed.length
    ? `${failed.length} of ${ran.length} test files failed:`
    : `all ${ran.length} test files passed`;
  return [`all files: ${tally}`, head, ...lines].join("\n") + "\n";
}
