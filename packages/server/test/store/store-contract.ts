// The storage contract: every Store adapter (SQLite now, PostgreSQL later) must pass this suite.
// Each test opens its own fresh, migrated, empty store through `openStore` and closes it.
import { describe } from "node:test";
import { adminContract } from "./contract-admin.js";
import { catalogContract } from "./contract-catalog.js";
import { commitContract } from "./contract-commits.js";
import { durabilityContract, type Reopen } from "./contract-durability.js";
import { groupCommitContract } from "./contract-group-commit.js";
import { historyPurgeContract } from "./contract-history-purge.js";
import { listingContract } from "./contract-listings.js";
import { providerContract } from "./contract-providers.js";
import { serviceLeaseContract } from "./contract-service-leases.js";
import { timerContract } from "./contract-timers.js";
import type { ContractStore } from "./fixtures.js";

export type { ContractStore } from "./fixtures.js";
export type { Reopen } from "./contract-durability.js";

export type ContractOptions = {
  /** Closes a store and opens a new one on the same database; without it, durability is skipped. */
  reopen?: Reopen;
};

export function runStoreContract(
  name: string,
  openStore: () => Promise<ContractStore>,
  options: ContractOptions = {},
): void {
  describe(`store contract: ${name}`, () => {
    catalogContract(openStore);
    commitContract(openStore);
    groupCommitContract(openStore);
    timerContract(openStore);
    adminContract(openStore);
    listingContract(openStore);
    providerContract(openStore);
    serviceLeaseContract(openStore);
    durabilityContract(openStore, options.reopen);
    historyPurgeContract(openStore, options.reopen);
  });
}
