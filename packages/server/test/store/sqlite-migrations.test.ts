// SQLite migrations: recorded once each, applied one transaction apiece, and a database from a
// newer server refused. Also the connection settings a file database keeps.
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import Database from "better-sqlite3";
import { applyMigrations, readMigrations } from "../../src/store/sqlite/migrate.js";
import { findMigrationsDir } from "../../src/store/sqlite/migrations-dir.js";
import { openSqliteStore } from "../../src/store/sqlite/index.js";
import { T0 } from "./fixtures.js";

const root = mkdtempSync(join(tmpdir(), "backstate-migrations-"));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshPath = () => join(root, `db-${++n}.db`);

function appliedMigrations(path: string): { version: number; name: string }[] {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare("SELECT version, name FROM schema_migrations ORDER BY version").all() as {
      version: number;
      name: string;
    }[];
  } finally {
    db.close();
  }
}

test("the package's migrations are found from the compiled code", () => {
  const files = readdirSync(findMigrationsDir()).filter((file) => file.endsWith(".sql"));
  assert.ok(files.includes("0001-init.sql"), files.join(", "));
  assert.ok(files.includes("0002-api.sql"), files.join(", "));
});

test("every migration is recorded once; migrating again applies nothing", async () => {
  const path = freshPath();
  const store = openSqliteStore({ path });
  await store.migrate();
  await store.migrate();
  await store.close();
  const again = openSqliteStore({ path });
  await again.migrate();
  await again.close();

  const files = readdirSync(findMigrationsDir())
    .filter((file) => file.endsWith(".sql"))
    .sort();
  assert.deepEqual(
    appliedMigrations(path),
    files.map((name, i) => ({ version: i + 1, name })),
  );
});

test("a database with a migration this server does not know is refused", async () => {
  const path = freshPath();
  const store = openSqliteStore({ path });
  await store.migrate();
  await store.close();
  const db = new Database(path);
  db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)").run(
    9999,
    "9999-from-the-future.sql",
    T0,
  );
  db.close();

  const newer = openSqliteStore({ path });
  await assert.rejects(newer.migrate(), { code: "store-newer-than-server" });
  // Refused means unusable, not half-working.
  await assert.rejects(newer.getOrg("org_a"), TypeError);
  await newer.close();
  assert.equal(appliedMigrations(path).at(-1)?.version, 9999);
});

/** A folder with copies of the package's migrations; returns it and how many there are. */
function copyOfMigrations(): { dir: string; count: number } {
  const dir = join(root, `migrations-${++n}`);
  mkdirSync(dir);
  const files = readdirSync(findMigrationsDir()).filter((file) => file.endsWith(".sql"));
  for (const file of files) copyFileSync(join(findMigrationsDir(), file), join(dir, file));
  return { dir, count: files.length };
}

test("a failing migration is rolled back whole, and the ones before it stay applied", async () => {
  const { dir, count } = copyOfMigrations();
  const shipped = Array.from({ length: count }, (_, i) => i + 1);
  // The first statement succeeds, the second fails: the table must not survive.
  const broken = join(dir, `${String(count + 1).padStart(4, "0")}-broken.sql`);
  writeFileSync(
    broken,
    "CREATE TABLE half_done (x INTEGER) STRICT;\nINSERT INTO no_such_table VALUES (1);\n",
  );
  const path = freshPath();
  const store = openSqliteStore({ path, migrationsDir: dir });
  await assert.rejects(store.migrate(), { code: "store-error" });
  await store.close();
  assert.deepEqual(
    appliedMigrations(path).map((row) => row.version),
    shipped,
  );
  const db = new Database(path, { readonly: true });
  const table = db.prepare("SELECT name FROM sqlite_schema WHERE name = 'half_done'").get();
  db.close();
  assert.equal(table, undefined);

  // Fixed, it applies on the next start.
  writeFileSync(broken, "CREATE TABLE half_done (x INTEGER) STRICT;\n");
  const fixed = openSqliteStore({ path, migrationsDir: dir });
  await fixed.migrate();
  await fixed.close();
  assert.deepEqual(
    appliedMigrations(path).map((row) => row.version),
    [...shipped, count + 1],
  );
});

test("a database of the first migration is upgraded with its data kept", async () => {
  const path = freshPath();
  const db = new Database(path);
  try {
    db.pragma("foreign_keys = ON");
    const [first] = readMigrations(findMigrationsDir());
    assert.ok(first);
    assert.deepEqual(applyMigrations(db, [first]), [1]);
    db.prepare("INSERT INTO orgs (id, name, created_at) VALUES (?, ?, ?)").run("org_a", "A", T0);
    db.prepare("INSERT INTO machines (org_id, name, created_at) VALUES (?, ?, ?)").run(
      "org_a",
      "m",
      T0,
    );
    db.prepare(
      "INSERT INTO keys (id, org_id, name, secret, scopes, created_at) VALUES (?, ?, ?, ?, ?, ?)",
    ).run("sbk_1", "org_a", "k", "sbsec_1", '["s"]', T0);
  } finally {
    db.close();
  }

  const store = openSqliteStore({ path });
  try {
    await store.migrate();
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
    // The new tables are there and work with the old rows.
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

test("timers armed before 0008 get their instance's org, and are claimed org by org", async () => {
  const path = freshPath();
  const db = new Database(path);
  try {
    const before = readMigrations(findMigrationsDir()).filter((m) => m.version < 8);
    applyMigrations(db, before);
    // Rows written by the older server.
    for (const org of ["org_busy", "org_quiet"]) {
      db.prepare("INSERT INTO orgs (id, name, created_at) VALUES (?, ?, 0)").run(org, org);
      db.prepare("INSERT INTO machines (org_id, name, created_at) VALUES (?, 'm', 0)").run(org);
      db.prepare(
        `INSERT INTO machine_versions (org_id, machine_name, id, code, hash, created_at)
         VALUES (?, 'm', 'v', '', '', 0)`,
      ).run(org);
    }
    const instance = db.prepare(
      `INSERT INTO instances (org_id, machine_name, name, machine_version_id, snapshot, status,
         sequence, pending_services, created_at, updated_at)
       VALUES (?, 'm', ?, 'v', '{}', 'running', 1, '[]', 0, 0)`,
    );
    const timer = db.prepare(
      "INSERT INTO timers (instance_id, key, due_at, event) VALUES (?, ?, ?, '{}')",
    );
    const busy = Number(instance.run("org_busy", "b").lastInsertRowid);
    const quiet = Number(instance.run("org_quiet", "q").lastInsertRowid);
    for (let i = 0; i < 5; i += 1) timer.run(busy, `t${i}`, 100 + i);
    timer.run(quiet, "t", 500);
  } finally {
    db.close();
  }

  const store = openSqliteStore({ path });
  try {
    await store.migrate();
    const claimed = await store.claimDueTimers(1000, 2, 30_000);
    assert.deepEqual(
      claimed.map((t) => [t.instance.orgId, t.key]),
      [
        ["org_busy", "t0"],
        ["org_quiet", "t"],
      ],
    );
  } finally {
    await store.close();
  }
});

test("timers armed before 0011 are kept, each its key's, and no timer id is used again", async () => {
  const path = freshPath();
  const db = new Database(path);
  let lastId: number;
  try {
    applyMigrations(
      db,
      readMigrations(findMigrationsDir()).filter((m) => m.version < 11),
    );
    db.prepare("INSERT INTO orgs (id, name, created_at) VALUES ('org_a', 'a', 0)").run();
    db.prepare("INSERT INTO machines (org_id, name, created_at) VALUES ('org_a', 'm', 0)").run();
    db.prepare(
      `INSERT INTO machine_versions (org_id, machine_name, id, code, hash, created_at)
       VALUES ('org_a', 'm', 'v', '', '', 0)`,
    ).run();
    const instance = Number(
      db
        .prepare(
          `INSERT INTO instances (org_id, machine_name, name, machine_version_id, snapshot,
             status, sequence, pending_services, created_at, updated_at)
           VALUES ('org_a', 'm', 'i', 'v', '{}', 'running', 1, '[]', 0, 0)`,
        )
        .run().lastInsertRowid,
    );
    const timer = db.prepare(
      "INSERT INTO timers (instance_id, org_id, key, due_at, event) VALUES (?, 'org_a', ?, ?, '{}')",
    );
    timer.run(instance, "kept", 100);
    lastId = Number(timer.run(instance, "gone", 200).lastInsertRowid);
    db.prepare("DELETE FROM timers WHERE key = 'gone'").run();
  } finally {
    db.close();
  }

  const store = openSqliteStore({ path });
  try {
    await store.migrate();
    const key = { orgId: "org_a", machineName: "m", instanceName: "i" };
    const id = (await store.loadInstance(key))!.id;
    await store.commitTransition({
      kind: "event",
      instance: key,
      instanceId: id,
      machineVersionId: "v",
      expectedSequence: 1,
      expectedPendingServices: [],
      snapshot: "{}",
      pendingServices: [],
      transition: { event: "{}", state: '"s"' },
      timersToArm: [{ key: "new", dueAt: 300, event: "{}" }],
      // The timer from before the migration is the one a cancel of its key reaches.
      timersToCancel: ["kept"],
      timersToDetach: [],
      at: 1,
    });
    const claimed = await store.claimDueTimers(1000, 10, 30_000);
    assert.deepEqual(
      claimed.map((t) => t.key),
      ["new"],
    );
    assert.ok(claimed[0]!.id > lastId, "a timer id is never used again");
  } finally {
    await store.close();
  }
});

test("migration files must be numbered without gaps", async () => {
  const dir = join(root, `migrations-${++n}`);
  mkdirSync(dir);
  copyFileSync(join(findMigrationsDir(), "0001-init.sql"), join(dir, "0001-init.sql"));
  writeFileSync(join(dir, "0003-skipped-two.sql"), "SELECT 1;\n");
  const store = openSqliteStore({ path: ":memory:", migrationsDir: dir });
  await assert.rejects(store.migrate(), /without gaps/);
  await store.close();
});

test("the store must be migrated before use, and is unusable once closed", async () => {
  const store = openSqliteStore({ path: ":memory:" });
  await assert.rejects(store.getOrg("org_a"), TypeError);
  await store.migrate();
  await store.createOrg({ id: "org_a", name: "A", createdAt: T0 });
  await store.close();
  await assert.rejects(store.getOrg("org_a"), TypeError);
  await assert.rejects(store.migrate(), TypeError);
});

test("a file database is in WAL mode, in a folder created for it", async () => {
  const path = join(root, "nested", "deeper", "backstate.db");
  const store = openSqliteStore({ path });
  await store.migrate();
  await store.close();
  const db = new Database(path, { readonly: true });
  assert.equal(db.pragma("journal_mode", { simple: true }), "wal");
  db.close();
});
