// The tests of api-surface.test.ts again, on PostgreSQL (skipped without BACKSTATE_TEST_PG_URL; failed in CI).
import { runOnPostgres } from "../support/store-target.js";

await runOnPostgres("api-surface: postgres", () => import("./api-surface.test.js"));
