// The /rt frame suite (realtime-wire.test.ts) again, on PostgreSQL: a server on a fresh schema of
// BACKSTATE_TEST_PG_URL's database (skipped without it; failed in CI).
import { runOnPostgres } from "../support/store-target.js";

await runOnPostgres("realtime wire: postgres", () => import("./realtime-wire.test.js"));
