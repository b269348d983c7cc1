// One server process per data dir. The SQLite file itself would let several processes write it,
// but a node keeps what it knows of the instances (its cache, its subscribers, the services
// running in its sandboxes) in memory and hears of no other process's commits on SQLite. So
// `backstate serve` claims the data dir for as long as it runs, and a second server on the same
// dir is refused instead of quietly serving stale state. Knowing it is alone, the claimer may also
// treat whatever an earlier process left in the store (its service leases) as dead.
//
// The claim is an exclusive lock on a small SQLite file of its own, held by an open connection
// in EXCLUSIVE locking mode: the operating system drops it when the process ends, however it
// ends, so a crashed server never leaves a stale claim behind (unlike a pid file).
import { chmodSync, closeSync, existsSync, openSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { BackstateError } from "../../errors.js";

export const CLAIM_FILE = "backstate.lock";

export type DataDirClaim = {
  /** Lets another process claim the data dir. Idempotent. */
  release(): void;
};

/** Refused: another live process holds the data dir. */
export class DataDirInUseError extends BackstateError {
  override name = "DataDirInUseError";
  constructor(dataDir: string) {
    super(
      "data-dir-in-use",
      `the data dir ${dataDir} is in use by another Backstate server; stop it, or give this one ` +
        "its own --data-dir",
    );
  }
}

/** Claims `dataDir` (which must exist) for this process, or throws DataDirInUseError. */
export function claimDataDir(dataDir: string): DataDirClaim {
  const path = join(dataDir, CLAIM_FILE);
  // Private like every file of the data dir (SQLite gives its journal the file's mode), even in
  // a folder open to others, and whatever mode an older server left it with.
  // Created only when missing: closing a descriptor of the file would drop every lock this
  // process holds on it, a claim it already holds among them (a second claimer here is refused).
  try {
    closeSync(openSync(path, "wx", 0o600));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
  chmodSync(path, 0o600);
  if (existsSync(`${path}-journal`)) chmodSync(`${path}-journal`, 0o600);
  // timeout 0: a held claim is refused at once rather than waited for.
  const db = new Database(path, { timeout: 0 });
  try {
    // A rollback journal, not WAL: in WAL mode EXCLUSIVE locking would not keep readers out.
    db.pragma("journal_mode = DELETE");
    db.pragma("locking_mode = EXCLUSIVE");
    // The first write takes the exclusive lock, which EXCLUSIVE mode then never gives back.
    db.exec("CREATE TABLE IF NOT EXISTS claim (pid INTEGER NOT NULL); DELETE FROM claim");
    db.prepare("INSERT INTO claim (pid) VALUES (?)").run(process.pid);
  } catch (error) {
    db.close();
    if ((error as { code?: unknown }).code === "SQLITE_BUSY") throw new DataDirInUseError(dataDir);
    throw error;
  }
  return {
    release() {
      if (db.open) db.close();
    },
  };
}
