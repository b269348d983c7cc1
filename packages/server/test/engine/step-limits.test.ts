// What one step may ask for is bounded, whatever the machine returns (STEP_LIMITS): each refusal
// is the machine's error, and nothing of the step is stored.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { systemClock } from "../../src/engine/clock.js";
import { STEP_LIMITS } from "../../src/engine/transition-commit.js";
import { ORG, startHarness, type Harness } from "../support/engine-harness.js";

const alice = { sub: "alice" };
let h: Harness;
let n = 0;
/** The service events the server's main thread received from the sandbox, as it got them. */
const received: Array<{ event: { type: string; output?: unknown }; chars: number }> = [];

before(async () => {
  h = await startHarness({ clock: systemClock, settleTimeoutMs: 2_000 });
  await h.deploy("greedy-v5.js", "v5-import", "greedy");
  await h.deploy("context-liar-v5.js", "v5-import", "liar");
  h.runtime.onServiceEvent((_org, _ref, _service, _run, event, _final, chars) =>
    received.push({ event, chars }),
  );
});
after(() => h.dispose());

async function fresh() {
  const where = { orgId: ORG, machineName: "greedy", instanceName: `g${++n}` };
  await h.engine.createInstance({ ...where, authContext: alice });
  return where;
}

const send = (where: Awaited<ReturnType<typeof fresh>>, event: unknown) =>
  h.engine.sendEvent({ ...where, event, authContext: alice });

const historyOf = async (where: Awaited<ReturnType<typeof fresh>>) =>
  (await h.store.listTransitions(where, { limit: 1000 })).map(
    (row) => (JSON.parse(row.event) as { type: string }).type,
  );

test("delayed events one step arms: up to the limit, not past it", async () => {
  const where = await fresh();
  await send(where, { type: "timers", count: STEP_LIMITS.maxTimersArmed });
  await assert.rejects(send(where, { type: "timers", count: STEP_LIMITS.maxTimersArmed + 1 }), {
    code: "machine-error",
    message: /1001 delayed events armed in one step; the limit is 1000/,
  });
  assert.deepEqual(await historyOf(where), ["xstate.init", "timers"]);
});

test("events one step sends itself: a few go, past the limit none (in number or in size)", async () => {
  const where = await fresh();
  await send(where, { type: "selfSends", count: 3 });
  assert.deepEqual(await historyOf(where), ["xstate.init", "selfSends", "tick", "tick", "tick"]);
  await assert.rejects(
    send(where, { type: "selfSends", count: STEP_LIMITS.maxSelfEventsSent + 1 }),
    { code: "machine-error", message: /1001 events sent to itself in one step; the limit is 1000/ },
  );
  // Each below the limit of one event, together over the limit of all.
  const padChars = Math.ceil(STEP_LIMITS.maxSelfEventBytes / 3) + 1;
  await assert.rejects(send(where, { type: "selfSends", count: 3, padChars }), {
    code: "machine-error",
    message: /the events this step sends itself are \d+ bytes as JSON; the limit is/,
  });
  assert.deepEqual(await historyOf(where), ["xstate.init", "selfSends", "tick", "tick", "tick"]);
});

test("services one step starts: up to the limit, not past it", async () => {
  const where = await fresh();
  await assert.rejects(
    send(where, { type: "services", count: STEP_LIMITS.maxServicesStarted + 1 }),
    {
      code: "machine-error",
      message: /101 services started in one step; the limit is 100/,
    },
  );
  assert.deepEqual(await historyOf(where), ["xstate.init"]);
  assert.deepEqual((await h.store.loadInstance(where))?.pendingServices, []);
});

test("a service result too large to store is not stored; the instance goes on", async () => {
  const where = await fresh();
  const state = await send(where, "big");
  assert.equal(state.state, "fetching");
  assert.deepEqual(await historyOf(where), ["xstate.init", "big"]);
  assert.ok(
    h.logs.some((log) => String(log.fields?.error).includes("characters as JSON; the limit is")),
    "the refused result is logged",
  );
  // Cut down in the sandbox: the 5 MiB result never reached the server's main thread.
  const done = received.find((r) => r.event.type === "xstate.done.actor.big");
  assert.ok(done, "the done event was received");
  assert.equal(done.event.output, undefined);
  assert.ok(done.chars > 5 * 1024 * 1024, `${done.chars}`);
  // The service is over and its result refused: the error event owed for it comes next.
  const next = await send(where, "tick");
  assert.equal(next.state, "failed");
});

test("a machine's failure message is cut short", async () => {
  const where = await fresh();
  const failure = await send(where, "fail").then(
    () => assert.fail("the step should fail"),
    (error: unknown) => error as Error & { code: string },
  );
  assert.equal(failure.code, "machine-error");
  assert.ok(
    failure.message.length < STEP_LIMITS.maxMessageChars + 200,
    `${failure.message.length}`,
  );
  assert.match(failure.message, /more characters\)$/);
});

test("a service that reports faster than its instance takes the events has the excess dropped", async () => {
  const where = await fresh();
  await send(where, "flood");
  const applied = (await historyOf(where)).filter((type) => type === "inc").length;
  // Without the bound, all 500 wait in memory and are applied; with it, at most a backlog's worth.
  assert.ok(applied > 0 && applied < 500, `${applied} applied`);
  const drops = h.logs.filter((log) => log.message.includes("faster than its instance takes them"));
  assert.equal(drops.length, 1, "logged once for the flood");
});

test("a context over the limit is refused even when the sandbox reports it small", async () => {
  const where = { orgId: ORG, machineName: "liar", instanceName: `l${++n}` };
  await h.engine.createInstance({ ...where, authContext: alice });
  await assert.rejects(send(where, { type: "grow", size: 1_000_000 }), {
    code: "context-too-large",
  });
  assert.deepEqual(await historyOf(where), ["xstate.init"]);
  // Within the limit, the same machine still steps.
  await send(where, { type: "grow", size: 1_000 });
  assert.deepEqual(await historyOf(where), ["xstate.init", "grow"]);
});
