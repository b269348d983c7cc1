// Hostile machine code through the whole engine: each attack fails with a clear error or comes to
// nothing, the server stays up, and other instances (same machine or not) keep working.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ORG, startHarness, type Harness } from "../support/engine-harness.js";

const anyone = { sub: "attacker" };
const SANDBOX_FAILURES = ["sandbox-timeout", "sandbox-memory-exceeded", "sandbox-crashed"];

describe("hostile machine code", () => {
  let h: Harness;
  const hostile = (instanceName: string) => ({ orgId: ORG, machineName: "hostile", instanceName });
  const neighbour = { orgId: ORG, machineName: "neighbour", instanceName: "n1" };

  before(async () => {
    h = await startHarness({ callTimeoutMs: 1500, memoryLimitMb: 64, settleTimeoutMs: 5000 });
    await h.deploy("hostile-v5.js", "v5-import", "hostile");
    await h.deploy("workflow-v5.js", "v5-import", "neighbour");
    await h.engine.createInstance({ ...neighbour, authContext: anyone });
    await h.engine.createInstance({ ...hostile("victim"), authContext: anyone });
  });
  after(() => h.dispose());

  /** The neighbour and a sibling instance still answer, and their state moved on as asked. */
  async function othersStillWork() {
    const state = await h.engine.sendEvent({ ...neighbour, event: "inc", authContext: anyone });
    assert.equal(state.state, "idle");
    const sibling = await h.engine.sendEvent({
      ...hostile("victim"),
      event: "inc",
      authContext: anyone,
    });
    assert.equal(typeof (sibling.publicContext as { count: number }).count, "number");
  }

  for (const attack of ["loopInAuthorizer", "loopInAssign", "bomb"]) {
    test(`${attack}: the event fails with a sandbox error and changes nothing`, async () => {
      const name = `a-${attack}`;
      await h.engine.createInstance({ ...hostile(name), authContext: anyone });
      await assert.rejects(
        h.engine.sendEvent({ ...hostile(name), event: attack, authContext: anyone }),
        (err: { code?: string }) => SANDBOX_FAILURES.includes(err.code ?? ""),
      );
      const rows = await h.store.listTransitions(hostile(name), { limit: 10 });
      assert.equal(rows.length, 1, "only the creation is recorded");
      await othersStillWork();
    });
  }

  for (const [fixture, style] of [
    ["global-swapper-v5.js", "v5-import"],
    ["global-swapper-v4.js", "v4-npm"],
  ] as const) {
    test(`${fixture}: a bundle that swaps the global Set, Map, Array and JSON, at load or in an action, does not reach the XState and the adapter it runs on`, async () => {
      const machineName = await h.deploy(fixture, style);
      const instance = (instanceName: string) => ({ orgId: ORG, machineName, instanceName });
      await h.engine.createInstance({ ...instance("s1"), authContext: anyone });
      const on = await h.engine.sendEvent({
        ...instance("s1"),
        event: "toggle",
        authContext: anyone,
      });
      assert.equal(on.state, "on");
      // One instance's action swaps them again: the next instance of the version is not touched.
      await h.engine.createInstance({ ...instance("s2"), authContext: anyone });
      await h.engine.sendEvent({ ...instance("s2"), event: "sabotage", authContext: anyone });
      const off = await h.engine.sendEvent({
        ...instance("s1"),
        event: "toggle",
        authContext: anyone,
      });
      assert.equal(off.state, "off");
      assert.deepEqual(off.publicContext, { flips: 1 });
      const read = await h.engine.readInstance({ ...instance("s1"), authContext: anyone });
      assert.equal(read.state, "off");
      await othersStillWork();
    });
  }

  test("a runaway event queued with others fails alone: the others are stepped one by one", async () => {
    const name = "batch-with-runaway";
    await h.engine.createInstance({ ...hostile(name), authContext: anyone });
    const outcomes = await Promise.all(
      ["inc", "loopInAssign", "inc", "inc"].map((event) =>
        h.engine.sendEvent({ ...hostile(name), event, authContext: anyone }).then(
          (state) => (state.publicContext as { count: number }).count,
          (err: { code?: string }) =>
            SANDBOX_FAILURES.includes(err.code ?? "") ? "lost" : err.code,
        ),
      ),
    );
    assert.deepEqual(outcomes, [1, "lost", 2, 3]);
    const rows = await h.store.listTransitions(hostile(name), { limit: 10 });
    assert.equal(rows.length, 4, "the creation and the three incs");
  });

  test("an infinite loop in an action: the transition stands, the sandbox is replaced", async () => {
    await h.engine.createInstance({ ...hostile("a-action"), authContext: anyone });
    const state = await h.engine.sendEvent({
      ...hostile("a-action"),
      event: "loopInAction",
      authContext: anyone,
    });
    assert.equal(state.state, "idle");
    await othersStillWork();
    assert.ok(h.pool.stats.killed + h.pool.stats.timeouts + h.pool.stats.unresponsive > 0);
  });

  test("an infinite loop in a service: the request answers, and the lost service's error comes next", async () => {
    await h.engine.createInstance({ ...hostile("a-service"), authContext: anyone });
    const state = await h.engine.sendEvent({
      ...hostile("a-service"),
      event: "loopInService",
      authContext: anyone,
    });
    assert.equal(state.state, "spinning");
    const next = await h.engine.sendEvent({
      ...hostile("a-service"),
      event: "inc",
      authContext: anyone,
    });
    assert.equal(next.state, "idle", "the error event moved it out of the service state first");
    await othersStillWork();
  });

  test("probes find no process, require, Buffer, host Function or environment", async () => {
    await h.engine.createInstance({ ...hostile("probe"), authContext: anyone });
    const state = await h.engine.sendEvent({
      ...hostile("probe"),
      event: "probe",
      authContext: anyone,
    });
    const probes = (
      state.publicContext as {
        probes: Array<{ name: string; ok: boolean; value?: string; error?: string }>;
      }
    ).probes;
    const byName = new Map(probes.map((p) => [p.name, p]));
    for (const name of ["typeof process", "typeof require", "typeof Buffer"]) {
      assert.deepEqual(byName.get(name), { name, ok: true, value: "undefined" }, name);
    }
    assert.equal(byName.get("globalThis keys with process")?.value, "");
    for (const name of [
      "context Function escape",
      "host function escape",
      "host function escape via setTimeout",
      "env via escape",
      "eval in context",
    ]) {
      const result = byName.get(name);
      assert.ok(result, name);
      // Either the attempt throws, or what it reaches is not a process.
      assert.ok(!result.ok || result.value === "undefined", `${name}: ${JSON.stringify(result)}`);
    }
    assert.ok(!JSON.stringify(probes).includes("PATH"), "no environment variable leaked");
    // @statebacked/machine's helpers find their runtime hook; persistent children come later.
    assert.deepEqual(byName.get("statebacked runtime"), {
      name: "statebacked runtime",
      ok: true,
      value: "function",
    });
    assert.match(byName.get("statebacked spawn")?.error ?? "", /not supported yet/);
  });

  test("import('node:fs') from a service fails", async () => {
    await h.engine.createInstance({ ...hostile("import"), authContext: anyone });
    const state = await h.engine.sendEvent({
      ...hostile("import"),
      event: "probeImport",
      authContext: anyone,
    });
    const result = (state.publicContext as { importResult: string }).importResult;
    assert.match(result, /^error: /);
  });

  test("a delayed event whose id no store can keep fails as the machine's error, writing nothing", async () => {
    const name = "unkeepable-timer-ids";
    await h.engine.createInstance({ ...hostile(name), authContext: anyone });
    for (const event of ["armNulTimer", "armLongTimer", "cancelNulTimer"]) {
      await assert.rejects(
        h.engine.sendEvent({ ...hostile(name), event, authContext: anyone }),
        (err: { code?: string; message?: string }) =>
          err.code === "machine-error" && /delayed event's id/.test(err.message ?? ""),
        event,
      );
    }
    const rows = await h.store.listTransitions(hostile(name), { limit: 10 });
    assert.equal(rows.length, 1, "only the creation is recorded");
    await othersStillWork();
  });

  test("prototype pollution through event data reaches no other instance", async () => {
    await h.engine.createInstance({ ...hostile("polluter"), authContext: anyone });
    await h.engine.createInstance({ ...hostile("bystander"), authContext: anyone });
    const data = JSON.parse(
      '{"__proto__": {"polluted": "yes"}, "constructor": {"prototype": {"polluted": "yes"}}}',
    ) as unknown;
    await h.engine
      .sendEvent({ ...hostile("polluter"), event: { type: "pollute", data }, authContext: anyone })
      .catch((err: { code?: string }) => assert.equal(err.code, "machine-error"));
    for (const name of ["polluter", "bystander"]) {
      const state = await h.engine.sendEvent({
        ...hostile(name),
        event: "checkPollution",
        authContext: anyone,
      });
      assert.equal((state.publicContext as { polluted: unknown }).polluted, null, name);
    }
    assert.equal(({} as { polluted?: unknown }).polluted, undefined, "the host is untouched");
  });
});
