// The tests of fuzz.test.ts again, on PostgreSQL (skipped without BACKSTATE_TEST_PG_URL; failed in CI).
import { runOnPostgres } from "../support/store-target.js";

await runOnPostgres("fuzz: postgres", () => import("./fuzz.test.js"));
