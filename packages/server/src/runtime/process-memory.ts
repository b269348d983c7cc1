// Reads another process's resident memory. V8's --max-old-space-size caps only the JavaScript
// heap; ArrayBuffers live outside it, so the pool also watches each sandbox's RSS. Linux only
// (/proc); elsewhere the answer is undefined and only the heap cap applies.
import { readFile } from "node:fs/promises";

/** Resident set size in bytes, or undefined when it cannot be read (not Linux, process gone). */
export async function readResidentBytes(pid: number): Promise<number | undefined> {
  if (process.platform !== "linux") return undefined;
  let status: string;
  try {
    status = await readFile(`/proc/${pid}/status`, "utf8");
  } catch {
    return undefined;
  }
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  return match?.[1] === undefined ? undefined : Number(match[1]) * 1024;
}
