// bench/postgres's baseline, what a user would write by hand on PostgreSQL: a node:http server over
// XState v5's pure transition and a pg pool, one table of snapshots. Per request, one transaction
// on a pooled connection: load the row (FOR UPDATE, so concurrent requests to one instance take
// turns), compute the transition, save the row, commit; then answer the state as JSON. It also
// serves POST /empty, which answers at once, to measure the load generator's own ceiling.
// Run by main.ts in a child process, on the schema BENCH_PG_SCHEMA of BENCH_PG_URL's database.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import pg from "pg";
import { initialTransition, transition } from "xstate";
import { serveChild } from "../http/child.js";
import { instanceName, toggleMachine } from "../engine/toggle-machine.js";

const INSTANCES = Number(process.env.BENCH_INSTANCES ?? 1_000);
const POOL_SIZE = Number(process.env.BENCH_BASELINE_POOL ?? 16);
const EVENTS_PATH = /^\/machines\/toggle\/i\/([^/]+)\/events$/;
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

function answer(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

function handle(req: IncomingMessage, res: ServerResponse, raw: string): void {
  if (req.method === "POST" && req.url === "/empty") return answer(res, 200, {});
  const match = req.method === "POST" ? EVENTS_PATH.exec(req.url ?? "") : null;
  if (!match?.[1]) return answer(res, 404, { error: "not found" });
  let event: { type: string };
  try {
    const body = JSON.parse(raw) as { event?: string | { type: string } };
    if (body.event === undefined) return answer(res, 400, { error: "no event" });
    event = typeof body.event === "string" ? { type: body.event } : body.event;
  } catch {
    return answer(res, 400, { error: "invalid JSON" });
  }
  send(decodeURIComponent(match[1]), event).then(
    (state) => answer(res, 200, state),
    (error: unknown) => answer(res, 500, { error: String(error) }),
  );
}

const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  let raw = "";
  req.setEncoding("utf8");
  req.on("data", (chunk: string) => (raw += chunk));
  req.on("end", () => handle(req, res, raw));
});
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const { port } = server.address() as AddressInfo;

serveChild({ url: `http://127.0.0.1:${port}` }, async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await pool.end();
});
