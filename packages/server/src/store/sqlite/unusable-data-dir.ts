// A data dir that cannot be used at start (not a folder, a file that is not a database, a damaged
// or unwritable one) is reported in words an operator can act on: `backstate serve` prints the
// message alone, where the driver's own error would have come with a stack trace.
import Database from "better-sqlite3";
import { BackstateError } from "../../errors.js";

/** Refused at start: the data dir, or the database in it, cannot be used. */
export class DataDirUnusableError extends BackstateError {
  override name = "DataDirUnusableError";
  constructor(dataDir: string, reason: string, cause: unknown) {
    super("data-dir-unusable", `cannot use the data dir ${dataDir}: ${reason}`, { cause });
  }
}

/**
 * `error`, thrown while opening the data dir, as a DataDirUnusableError when it was the file
 * system's or SQLite's (directly, or as the cause of a store error); undefined for any other, such
 * as the coded refusals (in use, newer than this server) which say what to do already.
 */
export function unusableDataDir(
  dataDir: string,
  databasePath: string,
  error: unknown,
): DataDirUnusableError | undefined {
  for (let cause = error; cause instanceof Error; cause = cause.cause) {
    if (cause instanceof Database.SqliteError) {
      const reason = `its database ${databasePath} cannot be used (${cause.message})`;
      return new DataDirUnusableError(dataDir, reason, error);
    }
    if (isFileSystemError(cause)) return new DataDirUnusableError(dataDir, cause.message, error);
    if (!(cause instanceof BackstateError && cause.code === "store-error")) return undefined;
  }
  return undefined;
}

/** A failed system call (mkdir, open, chmod…): node gives it an errno code and a syscall name. */
function isFileSystemError(error: Error): error is NodeJS.ErrnoException {
  const { code, syscall } = error as NodeJS.ErrnoException;
  return typeof code === "string" && typeof syscall === "string";
}
