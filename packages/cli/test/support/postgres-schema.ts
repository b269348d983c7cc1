// A PostgreSQL schema of its own for one test's server, so tests never see each other's tables.
import { randomBytes } from "node:crypto";
import pg from "pg";

export type FreshSchema = {
  /** `databaseUrl` with every connection's search_path on the new schema. */
  url: string;
  /** Drops the schema and closes the connection that made it (once its server is gone). */
  drop(): Promise<void>;
};

/** Creates a `bs_test_…` schema in the database at `databaseUrl`. */
export async function freshSchema(databaseUrl: string): Promise<FreshSchema> {
  const schema = `bs_test_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  const url = new URL(databaseUrl);
  url.searchParams.set("options", `-c search_path=${schema}`);
  return {
    url: url.toString(),
    async drop() {
      try {
        await admin.query(`DROP SCHEMA ${schema} CASCADE`);
      } finally {
        await admin.end();
      }
    },
  };
}
