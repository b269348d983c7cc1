// The realtime tests (realtime.test.ts) again, on PostgreSQL: updates then travel through the
// PostgreSQL update bus (skipped without BACKSTATE_TEST_PG_URL; failed in CI).
import { runOnPostgres } from "../support/store-target.js";

await runOnPostgres("realtime: postgres", () => import("./realtime.test.js"));
