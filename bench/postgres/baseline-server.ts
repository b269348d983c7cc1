// bench/postgres's baseline, what a user would write by hand on PostgreSQL: a node:http server over
// XState v5's pure transition and a pg pool, one table of snapshots. Per request, one transaction
// on a pooled connection: load the row (FOR UPDATE, so concurrent requests to one instance take
// turns), compute the transition, save the row, commit; then answer the state as JSON. It also
// serves POST /empty, which answers at once, to measure the load generator's own ceiling.
// Run by main.ts in a child process, on the schema BENCH_PG_SCHEMA of BENCH_PG_URL's database.
import pg from "pg";
import { initialTransition, transition } from "xstate";
import { serveToggleBaseline } from "../http/baseline-http.js";
import { instanceName, toggleMachine } from "../engine/toggle-machine.js";

const INSTANCES = Number(process.env.BENCH_INSTANCES ?? 1_000);
const POOL_SIZE = Number(process.env.BENCH_BASELINE_POOL ?? 16);
const url = process.env.BENCH_PG_URL;
const schema = process.env.BENCH_PG_SCHEMA;
if (!url || !schema || !/^[a-z_][a-z0-9_]*$/.test(schema)) {
  throw new Error("BENCH_PG_URL and BENCH_PG_SCHEMA (a plain identifier) must be set");
}

const pool = new pg.Pool({
  connectionString: url,
  max: POOL_SIZE,
  options: `-c search_path=${schema}`,
});
await pool.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
await pool.query("CREATE TABLE instances (name TEXT PRIMARY KEY, snapshot TEXT NOT NULL)");
const [initial] = initialTransition(toggleMachine);
const initialText = JSON.stringify(toggleMachine.getPersistedSnapshot(initial));
await pool.query(
  "INSERT INTO instances (name, snapshot) SELECT name, $2 FROM unnest($1::text[]) AS name",
  [Array.from({ length: INSTANCES }, (_, i) => instanceName(i)), initialText],
);

async function send(name: string, event: { type: string }): Promise<unknown> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    const found = await client.query<{ snapshot: string }>(
      "SELECT snapshot FROM instances WHERE name = $1 FOR UPDATE",
      [name],
    );
    const row = found.rows[0];
    if (!row) throw new Error(`no instance ${name}`);
    const restored = toggleMachine.resolveState(JSON.parse(row.snapshot) as never);
    const [next] = transition(toggleMachine, restored, event as never);
    await client.query("UPDATE instances SET snapshot = $1 WHERE name = $2", [
      JSON.stringify(toggleMachine.getPersistedSnapshot(next)),
      name,
    ]);
    await client.query("COMMIT");
    return { state: next.value, publicContext: next.context.public };
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

await serveToggleBaseline(send, () => pool.end());
