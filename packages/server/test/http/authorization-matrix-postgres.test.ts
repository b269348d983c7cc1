// The tests of authorization-matrix.test.ts again, on PostgreSQL (skipped without BACKSTATE_TEST_PG_URL; failed in CI).
import { runOnPostgres } from "../support/store-target.js";

await runOnPostgres(
  "authorization-matrix: postgres",
  () => import("./authorization-matrix.test.js"),
);
