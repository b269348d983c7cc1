// What the realtime tests across two PostgreSQL nodes share: the machine they watch, and a way
// to cut one node's listening connection (as a network fault or a database restart would).
import assert from "node:assert/strict";
import pg from "pg";
import { channelOf } from "../../src/store/postgres/notices.js";
import type { ApiServer } from "../support/api-server.js";

/** A counter (`inc`), and `arm`, which counts once more 300 ms later. */
export const COUNTER = `
import { createMachine, assign } from "xstate";
export default createMachine({
  id: "counter",
  initial: "open",
  context: { public: { count: 0 } },
  states: {
    open: { on: { inc: { actions: "inc" }, arm: "armed" } },
    armed: { after: { 300: { target: "open", actions: "inc" } } },
  },
}, {
  actions: { inc: assign({ public: ({ context }) => ({ count: context.public.count + 1 }) }) },
});
export const allowRead = () => true;
export const allowWrite = () => true;
`;

/** The application name of node `nodeId`'s listening connection. */
export function listenerName(nodeId: string): string {
  return `backstate-listener ${nodeId}`;
}

/** Terminates the listening connection of `node` (started with `nodeId`) from the database side. */
export async function cutListener(node: ApiServer, nodeId: string): Promise<void> {
  const client = new pg.Client({ connectionString: node.store.options.databaseUrl });
  await client.connect();
  try {
    const cut = await client.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
       WHERE application_name = $2 AND query LIKE $1`,
      [`%${channelOf(node.store.options.postgres?.schema)}%`, listenerName(nodeId)],
    );
    assert.equal(cut.rowCount, 1);
  } finally {
    await client.end();
  }
}
