// The tests of upload-flow.test.ts again, on PostgreSQL (skipped without BACKSTATE_TEST_PG_URL; failed in CI).
import { runOnPostgres } from "../support/store-target.js";

await runOnPostgres("upload-flow: postgres", () => import("./upload-flow.test.js"));
