// The pg connection pool every Backstate PostgreSQL store runs on, its transactions, and the
// translation of pg's errors into the server's coded errors at the adapter's edge.
import { DatabaseError, Pool, TypeOverrides, type PoolClient, type QueryResultRow } from "pg";
import { AlreadyExistsError, BackstateError, ConflictError, NotFoundError } from "../../errors.js";
import { applySessionSettings } from "./session-settings.js";

export type PoolOptions = {
  connectionString: string;
  poolSize: number;
  connectionTimeoutMs: number;
  /** Put in `search_path` of every connection: unqualified table names resolve there. */
  schema: string | undefined;
};

/** Schema names the adapter accepts: plain lowercase identifiers, which need no quoting. */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export function checkSchemaName(schema: string): void {
  if (!SCHEMA_NAME.test(schema)) {
    throw new TypeError(`schema must be a lowercase identifier (a-z, 0-9, _): ${schema}`);
  }
}

/** int8 (BIGINT: ids, sequences, epoch ms) as a number; pg returns it as a string by default. */
const types = new TypeOverrides();
types.setTypeParser(20, (text: string) => Number(text));

export function openPool({
  connectionString,
  poolSize,
  connectionTimeoutMs,
  schema,
}: PoolOptions): Pool {
  if (schema !== undefined) checkSchemaName(schema);
  const pool = new Pool({
    connectionString,
    max: poolSize,
    connectionTimeoutMillis: connectionTimeoutMs,
    fallback_application_name: "backstate",
    types,
    // The pool awaits it before a new connection is first handed out (its types say void), and
    // times nothing out by then: the settings take the connection timeout as their own.
    // eslint-disable-next-line @typescript-eslint/no-misused-promises
    onConnect: (client) => applySessionSettings(client, connectionTimeoutMs),
    // A startup option, so the setting holds on every connection from its first query on.
    ...(schema === undefined ? {} : { options: `-c search_path=${schema}` }),
  });
  // An idle connection that breaks (server restart, network) is dropped from the pool, which opens
  // a new one when next needed; without a listener the error would crash the process.
  pool.on("error", () => {});

  return pool;
}

/** What both the pool and one of its clients can run. */
export type Queryable = Pick<PoolClient, "query">;

/** Runs one parameterized statement and returns its rows. */
export async function rows<R extends QueryResultRow>(
  db: Queryable,
  text: string,
  values: readonly unknown[] = [],
): Promise<R[]> {
  return (await db.query<R>(text, values as unknown[])).rows;
}

/** The first row of a statement, or undefined. */
export async function row<R extends QueryResultRow>(
  db: Queryable,
  text: string,
  values: readonly unknown[] = [],
): Promise<R | undefined> {
  return (await rows<R>(db, text, values))[0];
}

/** How many rows a statement changed. */
export async function changes(
  db: Queryable,
  text: string,
  values: readonly unknown[] = [],
): Promise<number> {
  return (await db.query(text, values as unknown[])).rowCount ?? 0;
}

/**
 * Takes a connection from the pool. pg emits "error" on a connection that breaks (a network
 * failure, a database restart) and the pool listens for it only while the connection is idle
 * there: checked out, nobody would, and the event would crash the process. The query in flight
 * fails with the same error, and is handled there; so while the connection is out, the event is
 * listened for and let go. Released broken, the connection is dropped, listener and all.
 */
export async function checkOut(pool: Pool): Promise<PoolClient> {
  const client = await pool.connect();
  const letGo = () => {};
  client.on("error", letGo);
  const release = client.release.bind(client);
  client.release = (broken?: Error | boolean) => {
    if (!broken) client.removeListener("error", letGo);
    release(broken);
  };
  return client;
}

/**
 * Runs `work` in one transaction on one pooled connection: committed when it resolves, rolled
 * back when it throws. A connection that fails even to roll back is dropped, not reused.
 */
export async function inTransaction<T>(
  pool: Pool,
  work: (client: PoolClient) => Promise<T>,
): Promise<T> {
  const client = await checkOut(pool);
  let broken: Error | undefined;
  try {
    await client.query("BEGIN");
    const result = await work(client);
    await client.query("COMMIT");
    return result;
  } catch (error) {
    broken = await rollback(client, "ROLLBACK");
    throw error;
  } finally {
    client.release(broken);
  }
}

/** Sends `sql` (ROLLBACK, or ROLLBACK TO …); returns the error when the connection is unusable. */
export async function rollback(client: PoolClient, sql: string): Promise<Error | undefined> {
  try {
    await client.query(sql);
    return undefined;
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}

/**
 * The server ends the session after this error: a FATAL (or PANIC) one, as when its backend is
 * terminated (pg_terminate_backend, a shutdown). pg fails the statement under way with it, but
 * takes the connection for usable until its socket closes a moment later; released as usable
 * meanwhile, the connection would go to the next caller waiting for one, whose statement fails.
 */
export function endsSession(error: unknown): boolean {
  return (
    error instanceof DatabaseError && (error.severity === "FATAL" || error.severity === "PANIC")
  );
}

/** A UNIQUE or PRIMARY KEY constraint refused the write: the name or id is taken. */
export function isUniqueViolation(error: unknown): boolean {
  return error instanceof DatabaseError && error.code === "23505";
}

/** A FOREIGN KEY constraint refused the write: a row it refers to does not exist. */
export function isForeignKeyViolation(error: unknown): boolean {
  return error instanceof DatabaseError && error.code === "23503";
}

/**
 * A value was refused as text: U+0000 or bytes that are not UTF-8 (22021), or a character the
 * database's encoding lacks (22P05). Retrying cannot help, unlike a store-error.
 */
function isUnstorableText(error: unknown): boolean {
  return error instanceof DatabaseError && (error.code === "22021" || error.code === "22P05");
}

/** The database gave up on this write for another transaction's sake (deadlock, serialization). */
export function isLostRace(error: unknown): boolean {
  return error instanceof DatabaseError && (error.code === "40P01" || error.code === "40001");
}

/**
 * What a caller receives: coded errors and TypeErrors (misuse) pass through; text the database
 * cannot hold is the caller's `invalid-parameter`; anything else (a database error, a refused or
 * broken connection) becomes `store-error` with it as the cause.
 */
export function toStoreError(error: unknown): Error {
  if (error instanceof BackstateError || error instanceof TypeError) return error;
  if (isUnstorableText(error)) {
    // A safety net: routes refuse such text first (store/stored-text.ts), naming the parameter.
    return new BackstateError(
      "invalid-parameter",
      "the request holds text the database cannot store (U+0000 or invalid UTF-8)",
      { cause: error },
    );
  }
  const message = error instanceof Error ? error.message : String(error);
  return new BackstateError("store-error", `storage failed: ${message}`, { cause: error });
}

/** The error one transition commit of a batch fails with. */
export function toCommitError(error: unknown): Error {
  // Two writers crossed (two nodes' batches locking the same instances in opposite orders): the
  // one PostgreSQL picked lost the race, which is what a conflict says.
  if (isLostRace(error)) {
    return new ConflictError(
      `the commit lost a race with another writer: ${(error as Error).message}`,
    );
  }
  return toStoreError(error);
}

/** Runs an insert, turning a taken key into AlreadyExistsError and a missing parent into NotFound. */
export async function insertUnique(
  insert: () => Promise<unknown>,
  what: string,
  parent?: string,
): Promise<void> {
  try {
    await insert();
  } catch (error) {
    if (isUniqueViolation(error)) throw new AlreadyExistsError(`${what} already exists`);
    if (parent !== undefined && isForeignKeyViolation(error)) {
      throw new NotFoundError(`${parent} not found`);
    }
    throw error;
  }
}
