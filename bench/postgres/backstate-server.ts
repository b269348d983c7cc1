// bench/postgres's Backstate node, run by main.ts in a child process: the real server on the
// schema BENCH_PG_SCHEMA of BENCH_PG_URL's database (nodes given the same schema form a cluster).
// BENCH_PG_POOL sets its pool size (default 10), BENCH_PG_BATCHES how many group-commit
// transactions it runs at once (default the server's own).
import type { PostgresOptions } from "@backstate/server";
import { serveBackstateNode } from "../http/backstate-node.js";

export type { BackstateInfo } from "../http/backstate-node.js";

const url = process.env.BENCH_PG_URL;
const schema = process.env.BENCH_PG_SCHEMA;
if (!url || !schema) throw new Error("BENCH_PG_URL and BENCH_PG_SCHEMA must be set");
const postgres: PostgresOptions = { schema };
if (process.env.BENCH_PG_POOL) postgres.poolSize = Number(process.env.BENCH_PG_POOL);
if (process.env.BENCH_PG_BATCHES) {
  postgres.maxConcurrentBatches = Number(process.env.BENCH_PG_BATCHES);
}

await serveBackstateNode("postgres", { databaseUrl: url, postgres });
