// Turns better-sqlite3's errors into the server's coded errors at the adapter's edge.
import Database from "better-sqlite3";
import { AlreadyExistsError, BackstateError, NotFoundError } from "../../errors.js";

/** A UNIQUE or PRIMARY KEY constraint refused the write: the name or id is taken. */
export function isUniqueViolation(error: unknown): boolean {
  return (
    error instanceof Database.SqliteError &&
    (error.code === "SQLITE_CONSTRAINT_UNIQUE" || error.code === "SQLITE_CONSTRAINT_PRIMARYKEY")
  );
}

/** A FOREIGN KEY constraint refused the write: a row it refers to does not exist. */
export function isForeignKeyViolation(error: unknown): boolean {
  return error instanceof Database.SqliteError && error.code === "SQLITE_CONSTRAINT_FOREIGNKEY";
}

/**
 * What a caller receives: coded errors and TypeErrors (misuse) pass through; a database failure
 * becomes `store-error` with the driver's error as its cause.
 */
export function toStoreError(error: unknown): Error {
  if (error instanceof Database.SqliteError) {
    return new BackstateError("store-error", `storage failed: ${error.message}`, { cause: error });
  }
  if (error instanceof Error) return error;
  return new BackstateError("store-error", "storage failed", { cause: error });
}

/** Runs an insert, turning a taken key into AlreadyExistsError and a missing parent into NotFound. */
export function insertUnique(insert: () => unknown, what: string, parent?: string): void {
  try {
    insert();
  } catch (error) {
    if (isUniqueViolation(error)) throw new AlreadyExistsError(`${what} already exists`);
    if (parent !== undefined && isForeignKeyViolation(error)) {
      throw new NotFoundError(`${parent} not found`);
    }
    throw error;
  }
}
