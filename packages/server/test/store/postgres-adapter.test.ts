// The PostgreSQL adapter beyond the contract: its migrations (the same revisions as SQLite's,
// recorded once, a newer database refused, a failed one rolled back whole), its schema option,
// values kept exactly, group-commit batches, and a database it cannot reach.
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { DatabaseError } from "pg";
import { ConflictError } from "../../src/errors.js";
import { findAdapterMigrationsDir } from "../../src/store/migrations.js";
import { toCommitError, toStoreError } from "../../src/store/postgres/connection.js";
import { openPostgresStore } from "../../src/store/postgres/index.js";
import {
  createCommit,
  createInstance,
  eventCommit,
  instanceKey,
  seedMachine,
  T0,
} from "./fixtures.js";
import { TestSchemas, testDatabaseUrl } from "./postgres-support.js";

const migrationFiles = (adapter: "sqlite" | "postgres") =>
  readdirSync(findAdapterMigrationsDir(adapter))
    .filter((file) => file.endsWith(".sql"))
    .sort();

// Needs no database: the file lists are compared.
test("postgres migrations are the same revisions, under the same names, as SQLite's", () => {
  assert.deepEqual(migrationFiles("postgres"), migrationFiles("sqlite"));
});

test("a schema name that is not a plain lowercase identifier is refused", () => {
  for (const schema of ["Public", "a b", "x;DROP", "", "1abc"]) {
    assert.throws(
      () => openPostgresStore({ connectionString: "postgres://127.0.0.1:1/none", schema }),
      TypeError,
      schema,
    );
  }
});

test("a database that cannot be reached fails with store-error", async () => {
  // Port 1: nothing listens there, so the connection is refused at once.
  const store = openPostgresStore({
    connectionString: "postgres://postgres@127.0.0.1:1/test",
    connectionTimeoutMs: 2000,
  });
  try {
    await assert.rejects(store.migrate(), { code: "store-error" });
    // Refused means unusable, not half-working.
    await assert.rejects(store.getOrg("org_a"), TypeError);
  } finally {
    await store.close();
  }
});

test("database errors become coded errors: a lost race is a conflict, unstorable text invalid-parameter, the rest store-error", () => {
  const databaseError = (code: string) => {
    const error = new DatabaseError(`failed with ${code}`, 0, "error");
    error.code = code;
    return error;
  };
  assert.equal((toCommitError(databaseError("40P01")) as { code?: string }).code, "conflict");
  assert.equal((toCommitError(databaseError("40001")) as { code?: string }).code, "conflict");
  const unique = toStoreError(databaseError("23505"));
  assert.equal((unique as { code?: string }).code, "store-error");
  assert.equal(unique.cause instanceof DatabaseError, true);
  for (const code of ["22021", "22P05"]) {
    const unstorable = toStoreError(databaseError(code));
    assert.equal((unstorable as { code?: string }).code, "invalid-parameter", code);
    assert.equal(unstorable.cause instanceof DatabaseError, true);
  }
  const refused = toStoreError(Object.assign(new Error("connect ECONNREFUSED"), { code: "X" }));
  assert.equal((refused as { code?: string }).code, "store-error");
  const misuse = new TypeError("limit must be an integer ≥ 0");
  assert.equal(toStoreError(misuse), misuse);
  const coded = new ConflictError("stale");
  assert.equal(toCommitError(coded), coded);
});

const url = testDatabaseUrl("postgres adapter");

if (url !== undefined) {
  const schemas = new TestSchemas(url);
  const root = mkdtempSync(join(tmpdir(), "backstate-pg-migrations-"));
  after(() => rmSync(root, { recursive: true, force: true }));
  let folders = 0;

  const applied = (schema: string) =>
    schemas.sql(schema, async (client) => {
      const result = await client.query<{ version: number; name: string }>(
        "SELECT version, name FROM schema_migrations ORDER BY version",
      );
      return result.rows;
    });

  /** A folder with copies of the package's migrations; returns it and how many there are. */
  function copyOfMigrations(count = migrationFiles("postgres").length): string {
    const dir = join(root, `migrations-${++folders}`);
    mkdirSync(dir);
    for (const file of migrationFiles("postgres").slice(0, count)) {
      copyFileSync(join(findAdapterMigrationsDir("postgres"), file), join(dir, file));
    }
    return dir;
  }

  describe("postgres adapter", () => {
    test("every migration is recorded once; migrating again applies nothing", async () => {
      const schema = schemas.fresh();
      const store = await schemas.migrated(schema);
      await store.migrate();
      await store.close();
      const again = await schemas.migrated(schema);
      await again.close();
      assert.deepEqual(
        await applied(schema),
        migrationFiles("postgres").map((name, i) => ({ version: i + 1, name })),
      );
    });

    test("the tables live in the store's schema only", async () => {
      const schema = schemas.fresh();
      const store = await schemas.migrated(schema);
      await store.close();
      const tables = await schemas.sql(schema, async (client) => {
        const result = await client.query<{ schema: string; table: string }>(
          `SELECT table_schema AS schema, table_name AS table FROM information_schema.tables
           WHERE table_name IN ('orgs', 'instances', 'schema_migrations')
             AND table_schema = $1
           ORDER BY table_name`,
          [schema],
        );
        return result.rows.map((row) => row.table);
      });
      assert.deepEqual(tables, ["instances", "orgs", "schema_migrations"]);
    });

    test("a database with a migration this server does not know is refused", async () => {
      const schema = schemas.fresh();
      const store = await schemas.migrated(schema);
      await store.close();
      await schemas.sql(schema, (client) =>
        client.query(
          "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
          [9999, "9999-from-the-future.sql", T0],
        ),
      );
      const newer = schemas.open(schema);
      try {
        await assert.rejects(newer.migrate(), { code: "store-newer-than-server" });
        await assert.rejects(newer.getOrg("org_a"), TypeError);
      } finally {
        await newer.close();
      }
      assert.equal((await applied(schema)).at(-1)?.version, 9999);
    });

    test("a failing migration is rolled back whole, and the ones before it stay applied", async () => {
      const dir = copyOfMigrations();
      const shipped = migrationFiles("postgres").map((_, i) => i + 1);
      const next = shipped.length + 1;
      const broken = join(dir, `${String(next).padStart(4, "0")}-broken.sql`);
      // The first statement succeeds, the second fails: the table must not survive.
      writeFileSync(
        broken,
        "CREATE TABLE half_done (x INTEGER);\nINSERT INTO no_such_table VALUES (1);\n",
      );
      const schema = schemas.fresh();
      const store = schemas.open(schema, { migrationsDir: dir });
      await assert.rejects(store.migrate(), { code: "store-error" });
      await store.close();
      assert.deepEqual(
        (await applied(schema)).map((row) => row.version),
        shipped,
      );
      const table = await schemas.sql(schema, async (client) => {
        const result = await client.query<{ oid: string | null }>(
          "SELECT to_regclass('half_done')::text AS oid",
        );
        return result.rows[0]?.oid;
      });
      assert.equal(table, null);

      // Fixed, it applies on the next start.
      writeFileSync(broken, "CREATE TABLE half_done (x INTEGER);\n");
      const fixed = await schemas.migrated(schema, { migrationsDir: dir });
      await fixed.close();
      assert.deepEqual(
        (await applied(schema)).map((row) => row.version),
        [...shipped, next],
      );
    });

    test("a database of the first migration is upgraded with its data kept", async () => {
      const schema = schemas.fresh();
      const first = await schemas.migrated(schema, { migrationsDir: copyOfMigrations(1) });
      await first.close();
      await schemas.sql(schema, async (client) => {
        await client.query("INSERT INTO orgs (id, name, created_at) VALUES ('org_a', 'A', $1)", [
          T0,
        ]);
        await client.query(
          "INSERT INTO machines (org_id, name, created_at) VALUES ('org_a', 'm', $1)",
          [T0],
        );
        await client.query(
          `INSERT INTO keys (id, org_id, name, secret, scopes, created_at)
           VALUES ('sbk_1', 'org_a', 'k', 'sbsec_1', '["s"]', $1)`,
          [T0],
        );
      });

      const store = await schemas.migrated(schema);
      try {
        assert.deepEqual(await store.getMachine("org_a", "m"), {
          orgId: "org_a",
          name: "m",
          currentVersionId: undefined,
          indexes: [],
          createdAt: T0,
        });
        assert.deepEqual(
          (await store.listKeys("org_a", { limit: 10 })).map((key) => key.id),
          ["sbk_1"],
        );
        await store.putCodeUpload({
          orgId: "org_a",
          machineName: "m",
          id: "ver_1",
          code: "export default {}",
          createdAt: T0,
        });
        assert.equal((await store.getCodeUpload("org_a", "m", "ver_1"))?.code, "export default {}");
      } finally {
        await store.close();
      }
    });

    test("migration files must be numbered without gaps", async () => {
      const dir = copyOfMigrations(1);
      writeFileSync(join(dir, "0003-skipped-two.sql"), "SELECT 1;\n");
      const store = schemas.open(schemas.fresh(), { migrationsDir: dir });
      await assert.rejects(store.migrate(), /without gaps/);
      await store.close();
    });

    test("the store must be migrated before use, and is unusable once closed", async () => {
      const store = schemas.open(schemas.fresh());
      await assert.rejects(store.getOrg("org_a"), TypeError);
      await assert.rejects(
        store.commitTransition(createCommit(instanceKey("org_a", "i"))),
        TypeError,
      );
      await store.migrate();
      await store.createOrg({ id: "org_a", name: "A", createdAt: T0 });
      await store.close();
      await store.close();
      await assert.rejects(store.getOrg("org_a"), TypeError);
      await assert.rejects(store.migrate(), TypeError);
    });

    test("JSON text comes back byte for byte, and epoch ms as numbers up to the safe maximum", async () => {
      const store = await schemas.migrated(schemas.fresh());
      try {
        const far = Number.MAX_SAFE_INTEGER;
        await store.createOrg({ id: "org_a", name: "A", createdAt: far });
        const org = await store.getOrg("org_a");
        assert.equal(org?.createdAt, far);
        assert.equal(typeof org?.createdAt, "number");
        await seedMachine(store, "org_a");
        // Spacing, key order, escapes and non-ASCII that a JSON column type would normalize.
        const snapshot = '{ "z" : 1,"a":[ 1.50 , "\\u00e9é\\n" ], "a" : "dup" }';
        const key = instanceKey("org_a", "i1");
        const id = await createInstance(store, key, {
          snapshot,
          transition: { event: ' {"type" :"x"}', state: '"s\\u2028"' },
          at: far,
        });
        assert.equal(typeof id, "number");
        const loaded = await store.loadInstance(key);
        assert.equal(loaded?.snapshot, snapshot);
        assert.equal(loaded?.createdAt, far);
        const [history] = await store.listTransitions(key, { limit: 1 });
        assert.deepEqual(history, {
          sequence: 1,
          event: ' {"type" :"x"}',
          state: '"s\\u2028"',
          createdAt: far,
        });
      } finally {
        await store.close();
      }
    });

    test("text holding a NUL, which PostgreSQL cannot store, is the caller's invalid-parameter", async () => {
      const store = await schemas.migrated(schemas.fresh());
      try {
        await store.createOrg({ id: "org_a", name: "A", createdAt: T0 });
        const key = { id: "sbk_a", orgId: "org_a", secret: "s", scopes: [], createdAt: T0 };
        await assert.rejects(store.createKey({ ...key, name: "a\u0000b" }), {
          code: "invalid-parameter",
        });
        await assert.rejects(store.listKeys("org_a", { after: "\u0000", limit: 1 }), {
          code: "invalid-parameter",
        });
        assert.equal(await store.getKey("sbk_a"), undefined);
      } finally {
        await store.close();
      }
    });

    test("names sort byte by byte, whatever the database's locale", async () => {
      const schema = schemas.fresh();
      const store = await schemas.migrated(schema);
      try {
        await store.createOrg({ id: "org_a", name: "A", createdAt: T0 });
        const names = ["b", "B", "a", "_x", "Z", "é", "a-b", "ab"];
        for (const name of names) {
          await store.createMachine({ orgId: "org_a", name, createdAt: T0 });
        }
        const listed = (await store.listMachines("org_a", { limit: 100 })).map((m) => m.name);
        const bytewise = [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
        assert.deepEqual(listed, bytewise);
        const afterB = await store.listMachines("org_a", { after: "B", limit: 100 });
        assert.deepEqual(
          afterB.map((m) => m.name),
          bytewise.slice(bytewise.indexOf("B") + 1),
        );
        // Declared so, rather than left to the database's default (which may be a locale's).
        const collation = await schemas.sql(schema, async (client) => {
          const result = await client.query<{ collation: string | null }>(
            `SELECT collation_name AS collation FROM information_schema.columns
             WHERE table_schema = $1 AND table_name = 'machines' AND column_name = 'name'`,
            [schema],
          );
          return result.rows[0]?.collation;
        });
        assert.equal(collation, "C");
      } finally {
        await store.close();
      }
    });

    test("a batch takes at most maxBatchSize commits; the rest go to the next one", async () => {
      const store = await schemas.migrated(schemas.fresh(), { maxBatchSize: 8 });
      try {
        await seedMachine(store, "org_a");
        const before = store.stats.batches;
        const keys = Array.from({ length: 20 }, (_, i) => instanceKey("org_a", `i${i}`));
        await Promise.all(keys.map((key) => store.commitTransition(createCommit(key))));
        assert.equal(store.stats.batches - before, 3);
        for (const key of keys) assert.equal((await store.loadInstance(key))?.sequence, 1);
      } finally {
        await store.close();
      }
    });

    test("a commit that fails after some of its writes leaves none of them", async () => {
      const store = await schemas.migrated(schemas.fresh());
      try {
        await seedMachine(store, "org_a");
        const key = instanceKey("org_a", "i1");
        const other = instanceKey("org_a", "i2");
        const id = await createInstance(store, key);
        // The instance row and its history are written before the delivered timer is found
        // missing; the savepoint takes them back, and the commit beside it stays.
        const [failed, ok] = await Promise.allSettled([
          store.commitTransition(eventCommit(key, id, 1, { deliveredTimerId: 424242 })),
          store.commitTransition(createCommit(other)),
        ]);
        assert.equal(failed.status === "rejected" && failed.reason.code, "conflict");
        assert.equal(ok.status, "fulfilled");
        assert.equal((await store.loadInstance(key))?.sequence, 1);
        assert.equal((await store.listTransitions(key, { limit: 10 })).length, 1);
        assert.equal((await store.loadInstance(other))?.sequence, 1);
      } finally {
        await store.close();
      }
    });
  });
}
