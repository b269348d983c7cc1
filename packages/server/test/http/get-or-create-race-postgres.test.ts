// The getOrCreate race (get-or-create-race.test.ts) again, on PostgreSQL, with half the clients on
// a second node of the same schema (skipped without BACKSTATE_TEST_PG_URL; failed in CI).
import { runOnPostgres } from "../support/store-target.js";

await runOnPostgres("getOrCreate race: postgres", () => import("./get-or-create-race.test.js"));
