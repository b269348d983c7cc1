// On PostgreSQL, the connection that carries a service result's commit breaks mid-statement. The
// store settles the batch's fate (store/postgres/ambiguous-batch.ts): not written, and now never
// will be, so the commit fails with a store error. The engine tries it again, and the machine gets
// the result, written once, rather than the service's error event before its next event.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { CuttingProxy, type Cut } from "../support/cutting-proxy.js";
import { ORG, startHarness, type Harness } from "../support/engine-harness.js";
import { TestSchemas, testDatabaseUrl } from "../store/postgres-support.js";

const alice = { sub: "alice" };
// In the batch that commits the result, and in nothing written before it.
const RESULT_MARKER = "xstate.done.actor.double";

const url = testDatabaseUrl("engine: service result over a cut connection (postgres)");
if (url !== undefined) {
  const schemas = new TestSchemas(url);
  let proxy: CuttingProxy;
  let node: Harness;

  before(async () => {
    const target = new URL(url);
    proxy = await CuttingProxy.start({ host: target.hostname, port: Number(target.port || 5432) });
    node = await startHarness({
      databaseUrl: proxy.urlFor(url),
      postgres: { schema: schemas.fresh(), poolSize: 4 },
    });
    await node.deploy("workflow-v5.js", "v5-import", "workflow");
  });
  after(async () => {
    await node.dispose();
    await proxy.close();
  });

  describe("engine: a service result whose commit's connection breaks (postgres)", () => {
    const moments: Array<Cut["when"]> = ["before-sending", "after-sending"];
    for (const when of moments) {
      test(`cut ${when}: the result is committed once, not replaced by the error event`, async () => {
        const at = { orgId: ORG, machineName: "workflow", instanceName: `cut-${when}` };
        await node.engine.createInstance({
          ...at,
          authContext: alice,
          context: { public: { count: 1, note: "n" } },
        });
        proxy.cutNext({ marker: RESULT_MARKER, when });
        const state = await node.engine.sendEvent({ ...at, event: "start", authContext: alice });
        assert.ok(proxy.cutDone, "the connection was cut");
        assert.equal(state.state, "idle");
        assert.equal((state.publicContext as { count: number }).count, 4);
        const next = await node.engine.sendEvent({ ...at, event: "inc", authContext: alice });
        assert.equal((next.publicContext as { count: number }).count, 5);
        const rows = await node.store.listTransitions(at, { limit: 10 });
        assert.deepEqual(
          rows.map((row) => (JSON.parse(row.event) as { type: string }).type),
          ["xstate.init", "start", "xstate.done.actor.double", "inc"],
        );
      });
    }
  });
}
