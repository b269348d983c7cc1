// Pipelined commits of one instance on SQLite: two stores (processes, in production) on one
// database file (contract-chains.ts).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { openSqliteStore } from "../../src/store/sqlite/index.js";
import { chainContract } from "./contract-chains.js";

const root = mkdtempSync(join(tmpdir(), "backstate-chains-"));
after(() => rmSync(root, { recursive: true, force: true }));
let files = 0;

chainContract("sqlite", async (maxBatchSize, body) => {
  const path = join(root, `chains-${files++}.db`);
  const a = openSqliteStore({ path, maxBatchSize });
  const b = openSqliteStore({ path });
  try {
    await a.migrate();
    await b.migrate();
    await body(a, b);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});
