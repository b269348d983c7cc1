// Runs the storage contract against the SQLite adapter, in memory and on a file.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { openSqliteStore, type SqliteStore } from "../../src/store/sqlite/index.js";
import { runStoreContract } from "./store-contract.js";

async function migrated(path: string): Promise<SqliteStore> {
  const store = openSqliteStore({ path });
  await store.migrate();
  return store;
}

runStoreContract("sqlite in memory", () => migrated(":memory:"));

const dir = mkdtempSync(join(tmpdir(), "backstate-store-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const paths = new WeakMap<object, string>();
let files = 0;

runStoreContract(
  "sqlite on a file",
  async () => {
    // A fresh file per test, in a folder that does not exist yet (the store creates it).
    const path = join(dir, `db-${++files}`, "backstate.db");
    const store = await migrated(path);
    paths.set(store, path);
    return store;
  },
  {
    reopen: async (store) => {
      const path = paths.get(store);
      if (path === undefined) throw new Error("not a store of this suite");
      await store.close();
      const fresh = await migrated(path);
      paths.set(fresh, path);
      return fresh;
    },
  },
);
