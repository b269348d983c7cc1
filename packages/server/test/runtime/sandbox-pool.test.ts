import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { SandboxLoss, SandboxNotification } from "../../src/runtime/sandbox-contract.js";
import { SandboxPool } from "../../src/runtime/sandbox-pool.js";
import {
  bundleInline,
  callExport,
  memoryLogger,
  rejectionCode,
  target,
  TEST_ADAPTER,
  waitFor,
} from "./sandbox-helpers.js";

const V5_IMPORT = `
import { createMachine, initialTransition, transition } from "xstate";
const machine = createMachine({ id: "toggle-v5", initial: "off", states: { off: { on: { FLIP: "on" } }, on: {} } });
export default machine;
export function flip() {
  const [start] = initialTransition(machine);
  const [next] = transition(machine, start, { type: "FLIP" });
  return next.value;
}
`;

const V4_NPM = `
import { createMachine } from "npm:xstate";
const machine = createMachine({ id: "toggle-v4", initial: "off", states: { off: { on: { FLIP: "on" } }, on: {} } });
export default machine;
export function flip() { return machine.transition("off", "FLIP").value; }
`;

// Leaves marks on the XState module and the global object, and reports the marks it found.
const MARKER = `
import { createMachine } from "xstate";
export default createMachine({ id: "marker" });
export function mark(tag) {
  const found = { onXState: createMachine.__mark ?? null, onGlobal: globalThis.__mark ?? null };
  createMachine.__mark = tag;
  globalThis.__mark = tag;
  return found;
}
`;

const PROCESS_ID = `
export default { id: "process-id" };
const id = crypto.randomUUID();
export const whoami = () => id;
export const wait = (ms) => new Promise((resolve) => setTimeout(() => resolve(id), ms));
`;

describe("SandboxPool", () => {
  const logger = memoryLogger();
  let pool: SandboxPool;
  const notifications: SandboxNotification[] = [];

  before(() => {
    pool = new SandboxPool({ adapterPath: TEST_ADAPTER, size: 2, callTimeoutMs: 5000, logger });
    pool.onNotification((notification) => notifications.push(notification));
  });
  after(() => pool.close());

  test("runs a v5 bundle that imports xstate", async () => {
    const at = target("org_a", V5_IMPORT);
    assert.equal(await pool.call(at, "machine-id", "{}"), '"toggle-v5"');
    assert.equal(await callExport(pool, at, "flip"), "on");
  });

  test("runs a v4 bundle that imports npm:xstate", async () => {
    const at = target("org_a", V4_NPM);
    assert.equal(await pool.call(at, "machine-id", "{}"), '"toggle-v4"');
    assert.equal(await callExport(pool, at, "flip"), "on");
  });

  test("runs a bundle with xstate inlined", async () => {
    const code = await bundleInline(V5_IMPORT);
    assert.doesNotMatch(code, /^import /m);
    const at = target("org_a", code);
    assert.equal(await callExport(pool, at, "flip"), "on");
  });

  test("loads a version's code once per process", async () => {
    const at = target("org_a", V5_IMPORT);
    await Promise.all([1, 2, 3].map(() => pool.call(at, "machine-id", "{}", { affinity: "one" })));
    await pool.call(at, "machine-id", "{}", { affinity: "one" });
    assert.equal(at.loads, 1);
  });

  test("gives every version its own XState instance and global object", async () => {
    const single = new SandboxPool({ adapterPath: TEST_ADAPTER, size: 1 });
    try {
      const first = target("org_a", MARKER);
      const second = target("org_a", MARKER);
      assert.deepEqual(await callExport(single, first, "mark", ["first"]), {
        onXState: null,
        onGlobal: null,
      });
      assert.deepEqual(await callExport(single, second, "mark", ["second"]), {
        onXState: null,
        onGlobal: null,
      });
      assert.deepEqual(await callExport(single, first, "mark", ["again"]), {
        onXState: "first",
        onGlobal: "first",
      });
      assert.equal(single.stats.started, 1, "both versions ran in one process");
    } finally {
      await single.close();
    }
  });

  test("refuses a bundle importing anything but xstate, naming the import", async () => {
    const at = target("org_a", `import fs from "node:fs"; export default { id: "x" };`);
    await assert.rejects(pool.call(at, "machine-id", "{}"), (error: Error & { code: string }) => {
      assert.equal(error.code, "invalid-bundle");
      assert.match(error.message, /"node:fs"/);
      return true;
    });
    for (const specifier of ["lodash", "./local.js", "xstate/actions", "https://x.test/m.js"]) {
      const other = target("org_a", `import * as m from "${specifier}"; export default m;`);
      assert.equal(await rejectionCode(pool.call(other, "machine-id", "{}")), "invalid-bundle");
    }
  });

  test("refuses bundles that do not parse or throw while loading", async () => {
    for (const code of [
      "export default {",
      "throw new Error('nope'); export default {};",
      "await Promise.reject(new Error('nope')); export default {};",
      "const x = 1;\nexport default x;\nexport { missing };",
    ]) {
      const at = target("org_a", code);
      assert.equal(await rejectionCode(pool.call(at, "machine-id", "{}")), "invalid-bundle", code);
      // The failure is remembered with the version: a second call fails the same way.
      assert.equal(await rejectionCode(pool.call(at, "machine-id", "{}")), "invalid-bundle", code);
    }
  });

  test("passes the adapter's error codes through, and only machine codes", async () => {
    const at = target("org_a", V5_IMPORT);
    const thrown = (code: string | undefined) =>
      rejectionCode(pool.call(at, "throw", JSON.stringify({ message: "no", code })));
    assert.equal(await thrown("rejected-by-machine-authorizer"), "rejected-by-machine-authorizer");
    assert.equal(await thrown(undefined), "machine-error");
    assert.equal(await thrown("store-error"), "machine-error");
    assert.equal(await thrown("sandbox-timeout"), "machine-error");
  });

  test("fails the call, not the pool, when loadCode fails", async () => {
    const at = {
      orgId: "org_a",
      versionId: "ver_unloadable",
      loadCode: () => Promise.reject(new Error("store down")),
    };
    await assert.rejects(pool.call(at, "machine-id", "{}"), /store down/);
    const working = { ...target("org_a", V5_IMPORT), versionId: "ver_unloadable" };
    assert.equal(await pool.call(working, "machine-id", "{}"), '"toggle-v5"');
  });

  test("delivers notifications with the process's org and the version", async () => {
    const at = target("org_b", V5_IMPORT);
    await pool.call(at, "start-async", JSON.stringify({ delayMs: 20, tag: "later" }));
    await waitFor(() => notifications.some((n) => n.json.includes("later")), "the notification");
    const notification = notifications.find((n) => n.json.includes("later"));
    assert.deepEqual(notification, {
      orgId: "org_b",
      versionId: at.versionId,
      json: '{"tag":"later"}',
    });
  });

  test("forwards machine console output to the logger", async () => {
    const at = target(
      "org_a",
      `export default {}; export const say = () => console.log("hi", { n: 1 });`,
    );
    await callExport(pool, at, "say");
    await waitFor(
      () => logger.entries.some((entry) => entry.message.includes("hi { n: 1 }")),
      "the console line",
    );
  });

  test("logs a flood of console lines up to a budget, then counts what it dropped", async () => {
    const at = target(
      "org_a",
      `export default {}; export const flood = () => { for (let i = 0; i < 5000; i++) console.log("flood " + i); };`,
    );
    const before = logger.entries.length;
    await callExport(pool, at, "flood");
    // Every line is either logged or counted in a warning. No line follows the flood to tell its
    // last drops: the budget's own report does, a second after its first drop.
    const tally = () => {
      const entries = logger.entries.slice(before);
      const logged = entries.filter((entry) => entry.message.includes("flood ")).length;
      const counted = entries
        .map((entry) => /(\d+) lines dropped/.exec(entry.message)?.[1])
        .reduce((sum, count) => sum + (count === undefined ? 0 : Number(count)), 0);
      return { logged, counted };
    };
    await waitFor(() => {
      const { logged, counted } = tally();
      return counted > 0 && logged + counted === 5000;
    }, "the count of dropped lines");
    // The burst (200) and what a second or two earns, not 5,000.
    const { logged } = tally();
    assert.ok(logged >= 200 && logged < 1_000, `${logged} lines logged`);
  });
});

describe("SandboxPool scheduling", () => {
  test("spreads one org over no more than processesPerOrg processes", async () => {
    const pool = new SandboxPool({ adapterPath: TEST_ADAPTER, size: 2, processesPerOrg: 1 });
    try {
      const at = target("org_a", PROCESS_ID);
      const pids = await Promise.all([1, 2, 3, 4].map(() => callExport(pool, at, "wait", [50])));
      assert.equal(new Set(pids).size, 1, "one process for the org");
      const other = await callExport(pool, target("org_b", PROCESS_ID), "whoami");
      assert.ok(!pids.includes(other), "another org still gets the second slot");
    } finally {
      await pool.close();
    }
  });

  test("pins calls with the same affinity to one process", async () => {
    const pool = new SandboxPool({ adapterPath: TEST_ADAPTER, size: 2, processesPerOrg: 2 });
    try {
      const at = target("org_a", PROCESS_ID);
      // Concurrent calls spread over both processes, unless pinned.
      const spread = await Promise.all([1, 2, 3, 4].map(() => callExport(pool, at, "wait", [100])));
      assert.equal(new Set(spread).size, 2, "unpinned concurrent calls use both processes");
      const pinned = await Promise.all(
        [1, 2, 3, 4].map(() => callExport(pool, at, "wait", [100], { affinity: "inst_1" })),
      );
      assert.equal(new Set(pinned).size, 1);
      assert.equal(await callExport(pool, at, "whoami", [], { affinity: "inst_1" }), pinned[0]);
    } finally {
      await pool.close();
    }
  });

  test("kills a process to switch it to another org, and reports its affinities", async () => {
    const pool = new SandboxPool({ adapterPath: TEST_ADAPTER, size: 1 });
    const losses: SandboxLoss[] = [];
    pool.onSandboxLost((loss) => losses.push(loss));
    try {
      const a = target("org_a", PROCESS_ID);
      const b = target("org_b", PROCESS_ID);
      const first = await callExport(pool, a, "whoami", [], { affinity: "inst_a" });
      assert.equal(await callExport(pool, a, "whoami"), first, "same org reuses the process");
      assert.equal(pool.stats.started, 1);

      await callExport(pool, b, "whoami");
      assert.equal(pool.stats.started, 2);
      assert.equal(pool.stats.orgSwitches, 1);
      assert.equal(pool.stats.live, 1);
      assert.deepEqual(losses, [
        {
          orgId: "org_a",
          affinities: ["inst_a"],
          reason: "the sandbox process was recycled to serve another org",
        },
      ]);
      // The affinity died with its process: org_a gets a fresh one, with its code loaded again.
      assert.notEqual(await callExport(pool, a, "whoami", [], { affinity: "inst_a" }), first);
      assert.equal(a.loads, 2);
    } finally {
      await pool.close();
    }
  });

  test("queues a call while every process is busy with another org", async () => {
    const pool = new SandboxPool({ adapterPath: TEST_ADAPTER, size: 1 });
    try {
      const a = target("org_a", PROCESS_ID);
      const b = target("org_b", PROCESS_ID);
      const order: string[] = [];
      const slow = callExport(pool, a, "wait", [300]).then(() => order.push("a"));
      await waitFor(() => pool.stats.started === 1, "the first process");
      const queued = callExport(pool, b, "whoami").then(() => order.push("b"));
      await Promise.all([slow, queued]);
      assert.deepEqual(order, ["a", "b"]);
      assert.equal(pool.stats.orgSwitches, 1);
    } finally {
      await pool.close();
    }
  });

  test("a process holding a step retires for another org: it settles the step, then goes", async () => {
    const pool = new SandboxPool({ adapterPath: TEST_ADAPTER, size: 1 });
    try {
      const a = target("org_a", PROCESS_ID);
      const b = target("org_b", PROCESS_ID);
      const first = await callExport(pool, a, "whoami", [], { affinity: "inst_a" });
      const release = pool.holdStep("org_a", "inst_a");
      const served: string[] = [];
      const other = callExport(pool, b, "whoami").then((id) => (served.push("b"), id));
      // A new step of the held instance waits as well: a retiring process starts nothing new.
      const again = callExport(pool, a, "whoami", [], { affinity: "inst_a" }).then(
        (id) => (served.push("a again"), id),
      );
      // A window for a call that should wait to be served anyway: no event marks that none will
      // be (too short on a slow machine, it sees less; it cannot fail the test).
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.deepEqual(served, []);
      assert.equal(pool.stats.orgSwitches, 0, "the process holding the step lives");
      // The call that settles the step reaches the process that holds it.
      const settled = await pool.call(a, "execute", "{}", { affinity: "inst_a" });
      assert.equal(JSON.parse(settled), first);
      release();
      assert.notEqual(await other, first);
      assert.notEqual(await again, first);
      assert.deepEqual(served, ["b", "a again"]);
      assert.equal(pool.stats.orgSwitches, 2);
    } finally {
      await pool.close();
    }
  });

  test("a retiring process whose held step is never settled goes once overdue, with a warning", async () => {
    const logger = memoryLogger();
    const pool = new SandboxPool({
      adapterPath: TEST_ADAPTER,
      size: 1,
      retireWithinMs: 300,
      logger,
    });
    try {
      const a = target("org_a", PROCESS_ID);
      const first = await callExport(pool, a, "whoami", [], { affinity: "inst_a" });
      pool.holdStep("org_a", "inst_a");
      const started = Date.now();
      assert.notEqual(await callExport(pool, target("org_b", PROCESS_ID), "whoami"), first);
      assert.ok(Date.now() - started >= 250, "it waited for the retirement to run out");
      const warned = logger.entries.filter((entry) => entry.level === "warn");
      assert.ok(
        warned.some((entry) => entry.message.includes("still held steps")),
        JSON.stringify(warned),
      );
    } finally {
      await pool.close();
    }
  });

  test("an idle process holding no step is recycled before one holding a step retires", async () => {
    const pool = new SandboxPool({ adapterPath: TEST_ADAPTER, size: 2, processesPerOrg: 1 });
    try {
      const a = target("org_a", PROCESS_ID);
      const b = target("org_b", PROCESS_ID);
      const held = await callExport(pool, a, "whoami", [], { affinity: "inst_a" });
      const idle = await callExport(pool, b, "whoami");
      pool.holdStep("org_a", "inst_a");
      await callExport(pool, target("org_c", PROCESS_ID), "whoami");
      assert.equal(pool.stats.orgSwitches, 1);
      assert.equal(await callExport(pool, a, "whoami", [], { affinity: "inst_a" }), held);
      assert.notEqual(
        await callExport(pool, b, "whoami"),
        idle,
        "org_b's process was the one to go",
      );
    } finally {
      await pool.close();
    }
  });

  test(
    "a retirement no waiter needs any more ends, and the calls parked for it go on",
    { timeout: 20_000 },
    async () => {
      const pool = new SandboxPool({ adapterPath: TEST_ADAPTER, size: 2, processesPerOrg: 1 });
      try {
        const a = target("org_a", PROCESS_ID);
        const held = await callExport(pool, a, "whoami", [], { affinity: "inst_a" });
        pool.holdStep("org_a", "inst_a");
        const busy = callExport(pool, target("org_c", PROCESS_ID), "wait", [300], {
          affinity: "inst_c",
        });
        await waitFor(() => pool.stats.started === 2, "org_c's process");
        // Nothing idle but org_a's process, kept by its held step: it retires for org_b.
        const other = callExport(pool, target("org_b", PROCESS_ID), "whoami");
        const parked = callExport(pool, a, "whoami", [], { affinity: "inst_a" });
        // org_c's process goes idle and is recycled for org_b: org_a's retirement is for nobody.
        await busy;
        assert.notEqual(await other, held);
        assert.equal(await parked, held, "the parked call ran where its instance is pinned");
        assert.equal(pool.stats.orgSwitches, 1);
      } finally {
        await pool.close();
      }
    },
  );

  test(
    "a step's process is not recycled between the step's answer and its holdStep",
    { timeout: 20_000 },
    async () => {
      const pool = new SandboxPool({ adapterPath: TEST_ADAPTER, size: 1 });
      try {
        const a = target("org_a", PROCESS_ID);
        // org_a's step in flight on the only process; org_b waits for the slot.
        const step = callExport(pool, a, "wait", [200], { affinity: "inst_a" });
        await waitFor(() => pool.stats.started === 1, "org_a's process");
        const other = callExport(pool, target("org_b", PROCESS_ID), "whoami");
        const answeredBy = await step;
        // What StepCommitter does as soon as the answer is in: hold the step where it waits.
        const release = pool.holdStep("org_a", "inst_a");
        // Its execute reaches the process that answered the step, which org_b did not take.
        assert.equal(
          JSON.parse(await pool.call(a, "execute", "{}", { affinity: "inst_a" })),
          answeredBy,
        );
        assert.equal(pool.stats.orgSwitches, 0);
        release();
        assert.notEqual(await other, answeredBy);
      } finally {
        await pool.close();
      }
    },
  );

  test(
    "an org is served while two other orgs keep their processes busy",
    { timeout: 20_000 },
    async () => {
      const pool = new SandboxPool({ adapterPath: TEST_ADAPTER, size: 2, processesPerOrg: 1 });
      let stop = false;
      let lanesStarted = 0;
      // Calls one after another on three instances of an org: its process always has one.
      const keepBusy = async (orgId: string, lane: number) => {
        await new Promise((resolve) => setTimeout(resolve, lane * 30));
        lanesStarted++;
        while (!stop) {
          await callExport(pool, target(orgId, PROCESS_ID), "wait", [90], {
            affinity: `inst_${lane}`,
          }).catch(() => {});
        }
      };
      const lanes: Array<Promise<void>> = [];
      try {
        await callExport(pool, target("org_a", PROCESS_ID), "whoami");
        await callExport(pool, target("org_c", PROCESS_ID), "whoami");
        for (const lane of [0, 1, 2]) lanes.push(keepBusy("org_a", lane), keepBusy("org_c", lane));
        // org_b asks once every lane keeps its org's process busy.
        while (lanesStarted < lanes.length) await new Promise((resolve) => setTimeout(resolve, 5));
        // Starved, org_b would wait until the test's time limit.
        await callExport(pool, target("org_b", PROCESS_ID), "whoami");
      } finally {
        stop = true;
        await Promise.all(lanes);
        await pool.close();
      }
    },
  );

  test(
    "an org waiting for a slot is served after the call under way, not after another org's whole backlog",
    { timeout: 60_000 },
    async () => {
      const pool = new SandboxPool({ adapterPath: TEST_ADAPTER, size: 1 });
      try {
        const a = target("org_a", PROCESS_ID);
        await callExport(pool, a, "whoami");
        let answered = 0;
        const backlog = Array.from({ length: 200 }, (_, i) =>
          callExport(pool, a, "wait", [20], { affinity: `inst_${i % 20}` }).then(() => answered++),
        );
        // One turn (1 s by default) of 20 ms calls, then org_a's process hands back the rest.
        await callExport(pool, target("org_b", PROCESS_ID), "whoami");
        const answeredFirst = answered;
        await Promise.all(backlog);
        assert.ok(answeredFirst < 100, `org_b waited for ${answeredFirst} of org_a's 200 calls`);
        assert.equal(answered, 200, "the calls handed back were served in the end");
      } finally {
        await pool.close();
      }
    },
  );

  test(
    "a process retiring for another org serves its own org for a turn before it hands back calls",
    { timeout: 60_000 },
    async () => {
      const pool = new SandboxPool({ adapterPath: TEST_ADAPTER, size: 1, orgTurnMs: 2000 });
      try {
        const a = target("org_a", PROCESS_ID);
        await callExport(pool, a, "whoami");
        const turnBegunBy = Date.now();
        const backlog = Array.from({ length: 100 }, () => callExport(pool, a, "wait", [30]));
        await callExport(pool, target("org_b", PROCESS_ID), "whoami");
        const waited = Date.now() - turnBegunBy;
        await Promise.all(backlog);
        // Its turn began a little before the first answer: 1 s of margin for that.
        assert.ok(waited >= 1000, `org_b took the slot after ${waited} ms`);
      } finally {
        await pool.close();
      }
    },
  );

  test(
    "calls handed back keep their order within an affinity, and a held step's execute stays with it",
    { timeout: 60_000 },
    async () => {
      const pool = new SandboxPool({ adapterPath: TEST_ADAPTER, size: 1, orgTurnMs: 1 });
      try {
        const a = target("org_a", PROCESS_ID);
        const first = await callExport(pool, a, "whoami", [], { affinity: "inst_a" });
        const release = pool.holdStep("org_a", "inst_a");
        const order: number[] = [];
        const backlog = Array.from({ length: 30 }, (_, i) =>
          callExport(pool, a, "wait", [20], { affinity: "inst_a" }).then(() => order.push(i)),
        );
        // Queued behind the backlog: it settles the step, so it runs where the step waits.
        const executed = pool.call(a, "execute", "{}", { affinity: "inst_a" });
        const other = callExport(pool, target("org_b", PROCESS_ID), "whoami");
        const executedBy = JSON.parse(await executed) as unknown;
        const ranBefore = order.length;
        release();
        const otherBy = await other;
        await Promise.all(backlog);
        assert.equal(executedBy, first);
        assert.ok(ranBefore < 10, `${ranBefore} calls of the backlog ran before the execute`);
        assert.notEqual(otherBy, first);
        assert.deepEqual(
          order,
          Array.from({ length: 30 }, (_, i) => i),
        );
      } finally {
        await pool.close();
      }
    },
  );

  test("fails pending and later calls with sandbox-crashed once closed", async () => {
    const pool = new SandboxPool({ adapterPath: TEST_ADAPTER, size: 1 });
    const at = target("org_a", PROCESS_ID);
    const pending = rejectionCode(callExport(pool, at, "wait", [5000]));
    await waitFor(() => pool.stats.started === 1, "the process");
    await pool.close();
    assert.equal(await pending, "sandbox-crashed");
    assert.equal(await rejectionCode(callExport(pool, at, "whoami")), "sandbox-crashed");
    assert.equal(pool.stats.live, 0);
  });

  test("refuses misuse with TypeError", async () => {
    assert.throws(() => new SandboxPool({ adapterPath: "" }), TypeError);
    assert.throws(() => new SandboxPool({ adapterPath: TEST_ADAPTER, size: 0 }), TypeError);
    const pool = new SandboxPool({ adapterPath: TEST_ADAPTER });
    const at = target("org_a", PROCESS_ID);
    await assert.rejects(pool.call(at, "whoami", "{}", { timeoutMs: -1 }), TypeError);
    await pool.close();
  });
});
