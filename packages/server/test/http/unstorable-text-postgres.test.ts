// The tests of unstorable-text.test.ts again, on PostgreSQL (skipped without BACKSTATE_TEST_PG_URL; failed in CI).
import { runOnPostgres } from "../support/store-target.js";

await runOnPostgres("unstorable text: postgres", () => import("./unstorable-text.test.js"));
