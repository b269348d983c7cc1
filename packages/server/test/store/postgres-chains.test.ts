// Pipelined commits of one instance on PostgreSQL: two nodes on one schema (contract-chains.ts).
import { chainContract } from "./contract-chains.js";
import { TestSchemas, testDatabaseUrl } from "./postgres-support.js";

const url = testDatabaseUrl("postgres: pipelined commits");

if (url !== undefined) {
  const schemas = new TestSchemas(url);
  chainContract("postgres", async (maxBatchSize, body) => {
    const schema = schemas.fresh();
    const a = await schemas.migrated(schema, { maxBatchSize });
    const b = await schemas.migrated(schema);
    try {
      await body(a, b);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
}
