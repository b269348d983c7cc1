// Unit tests of commit chains (commit-chains.ts) with a fake batch runner: a commit whose batch
// failed as a whole was not written, and the commit built on it, cut into a later batch, must
// find it failed. The stores' contract (test/store/contract-chains.ts) covers refusals the
// runners make themselves.
import assert from "node:assert/strict";
import { test } from "node:test";
import { CommitChains, type QueuedCommit } from "./commit-chains.js";
import { GroupCommitter, type Outcome } from "./group-commit.js";
import type { CommitResult, TransitionCommit } from "./store.js";

const eventCommit = (expectedSequence: number) =>
  ({
    kind: "event",
    instance: { orgId: "org_a", machineName: "m", instanceName: "i" },
    expectedSequence,
  }) as TransitionCommit;

for (const runner of ["synchronous", "asynchronous"] as const) {
  test(`the link after one whose ${runner} batch failed finds it failed, in a later batch`, async () => {
    const seen: Array<boolean | undefined> = [];
    const committer = new GroupCommitter<QueuedCommit, CommitResult>(
      (batch) => {
        seen.push(...batch.map((queued) => queued.builtOn?.failed));
        if (seen.length === 1) {
          if (runner === "synchronous") throw new Error("the transaction failed");
          return Promise.reject(new Error("the transaction failed"));
        }
        const written = batch.map((): Outcome<CommitResult> => ({
          ok: true,
          value: { instanceId: 1, sequence: 3 },
        }));
        return runner === "synchronous" ? written : Promise.resolve(written);
      },
      { maxBatchSize: 1, batchError: (cause) => cause as Error },
    );
    const chains = new CommitChains();
    const first = chains.submit(committer, eventCommit(1));
    const second = chains.submit(committer, eventCommit(2));
    await assert.rejects(first, /the transaction failed/);
    await second;
    assert.deepEqual(seen, [undefined, true]);
  });
}
