// Runs the storage contract against the PostgreSQL adapter: every test on a schema of its own,
// in the database named by BACKSTATE_TEST_PG_URL (skipped without it, except in CI).
import type { PostgresStore } from "../../src/store/postgres/index.js";
import { TestSchemas, testDatabaseUrl } from "./postgres-support.js";
import { runStoreContract } from "./store-contract.js";

const url = testDatabaseUrl("store contract: postgres");

if (url !== undefined) {
  const schemas = new TestSchemas(url);
  const schemaOf = new WeakMap<object, string>();
  const open = async (schema: string): Promise<PostgresStore> => {
    const store = await schemas.migrated(schema);
    schemaOf.set(store, schema);
    return store;
  };

  runStoreContract("postgres", () => open(schemas.fresh()), {
    reopen: async (store) => {
      const schema = schemaOf.get(store);
      if (schema === undefined) throw new Error("not a store of this suite");
      await store.close();
      return open(schema);
    },
  });
}
