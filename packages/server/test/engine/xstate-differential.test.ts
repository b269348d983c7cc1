// Differential test: seeded random event sequences (and clock moves) go to an engine instance and
// to the same machine run in memory by plain XState; after each, value, context, tags, done and
// output must agree. Runs on SQLite and PostgreSQL, with the instance cache and with every
// snapshot read back from the store by a restarted engine.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { ManualClock } from "../../src/engine/clock.js";
import { parseEnvelope } from "../../src/engine/instance-state.js";
import { testDatabaseUrl } from "../store/postgres-support.js";
import type { BundleStyle } from "../support/bundles.js";
import { ORG, startHarness, type Harness, type HarnessOptions } from "../support/engine-harness.js";
import { runInMemory, type Observed } from "../support/in-memory-machine.js";
import { dropSchema, freshSchemaName } from "../support/store-target.js";

type Op = { send: string } | { advanceMs: number };

const COMMON = [
  "inc",
  "inc",
  "dec",
  "bump",
  "twice",
  "selfSend",
  "schedule",
  "unschedule",
  "delayedSelf",
  "start",
  "fail",
  "ping",
  "repair",
  "next",
  "swap",
  "off",
  "on",
  "resumeDeep",
  "resumeShallow",
  "arm",
  "armDynamic",
  "disarm",
  "nothing",
  "flash",
  "armBoth",
];
const EVENTS: Record<4 | 5, string[]> = {
  5: [...COMMON, "delegate", "shout", "spawnBg", "spawnAndStop", "spawnInAssign", "talk"],
  4: [...COMMON, "fanOut", "answer", "watch", "talk"],
};
const RARE = ["finish", "reset"];

/** mulberry32: a small seeded generator, so a failing sequence can be replayed by its seed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function sequence(seed: number, generation: 4 | 5, length: number): Op[] {
  const next = random(seed);
  const pick = <T>(items: T[]) => items[Math.floor(next() * items.length)]!;
  const ops: Op[] = [];
  for (let i = 0; i < length; i++) {
    const roll = next();
    if (roll < 0.2) ops.push({ advanceMs: pick([50, 100, 150, 300]) });
    else ops.push({ send: roll < 0.23 ? pick(RARE) : pick(EVENTS[generation]) });
  }
  return ops;
}

/**
 * The answer to a send, or a failure once it has waited 20 s of real time: on the simulated
 * clock the settle deadline never comes, so a service that never answers would hang the test.
 */
async function answered<T>(answer: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: no answer (a service never settled)`)),
      20_000,
    );
  });
  try {
    return await Promise.race([answer, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** JSON's view of a value (what a stored snapshot can hold), tags in order. */
function normalized(observed: Observed): Observed {
  const plain = JSON.parse(JSON.stringify(observed)) as Observed;
  plain.tags = [...plain.tags].sort();
  return plain;
}

type Variant = {
  name: string;
  options: () => HarnessOptions;
  /**
   * No instance cache (every step starts from the snapshot read back from the store), and a
   * restart (a new engine and sandbox pool on the same store) before every this many ops.
   */
  restartEvery?: number;
  /** Which random sequences run, one fresh instance each. */
  seeds: number[];
  cleanup?: () => Promise<void>;
};

const variants: Variant[] = [
  { name: "SQLite, cached", options: () => ({}), seeds: [1, 2, 3] },
  {
    name: "SQLite, restarted",
    options: () => ({ instanceCacheSize: 0 }),
    restartEvery: 10,
    seeds: [4],
  },
];
const pgUrl = testDatabaseUrl("xstate differential on PostgreSQL");
if (pgUrl !== undefined) {
  for (const restartEvery of [undefined, 15]) {
    const schema = freshSchemaName();
    variants.push({
      name: restartEvery ? "PostgreSQL, restarted" : "PostgreSQL, cached",
      options: () => ({
        databaseUrl: pgUrl,
        postgres: { schema, poolSize: 2 },
        ...(restartEvery ? { instanceCacheSize: 0 } : {}),
      }),
      ...(restartEvery ? { restartEvery, seeds: [5] } : { seeds: [6, 7] }),
      cleanup: () => dropSchema(pgUrl, schema),
    });
  }
}

const CASES: Array<{ style: BundleStyle; generation: 4 | 5; fixture: string }> = [
  { style: "v5-import", generation: 5, fixture: "differential-v5.js" },
  { style: "v4-cli", generation: 4, fixture: "differential-v4.js" },
];
const LENGTH = 30;

for (const variant of variants) {
  describe(`engine vs in-memory XState (${variant.name})`, () => {
    after(() => variant.cleanup?.());

    for (const { style, generation, fixture } of CASES) {
      test(`${style}: random sequences agree after every event`, async () => {
        const clock = new ManualClock();
        let h: Harness = await startHarness({ ...variant.options(), clock });
        try {
          const machineName = await h.deploy(fixture, style, `diff-${style}`);
          for (const seed of variant.seeds) {
            const at = { orgId: ORG, machineName, instanceName: `seed-${seed}` };
            const observe = async (): Promise<Observed> => {
              const admin = await h.engine.inspectInstance(at);
              const record = await h.store.loadInstance(at);
              const machine = parseEnvelope(record!.snapshot).machine as { output?: unknown };
              const observed: Observed = {
                value: admin.state,
                context: admin.context,
                tags: admin.tags,
                done: admin.done,
              };
              if (machine.output !== undefined) observed.output = machine.output;
              return observed;
            };
            const memory = await runInMemory(fixture, generation);
            try {
              await h.engine.createInstance({ ...at, authContext: {} });
              assert.deepEqual(
                normalized(await observe()),
                normalized(memory.observe()),
                `seed ${seed}, at creation`,
              );
              const ops = sequence(seed, generation, LENGTH);
              for (const [index, op] of ops.entries()) {
                if (variant.restartEvery && index % variant.restartEvery === 0) {
                  h = await h.restart({ ...variant.options(), clock });
                }
                if ("send" in op) {
                  await memory.send({ type: op.send });
                  await answered(
                    h.engine.sendEvent({ ...at, event: op.send, authContext: {} }),
                    `seed ${seed}, ${op.send}`,
                  );
                } else {
                  // In ticks shorter than any delay, so each delayed event fires at its own time.
                  for (let t = 0; t < op.advanceMs; t += 50) {
                    await memory.advance(50);
                    clock.advance(50);
                    await h.engine.timersIdle();
                  }
                }
                const done = ops
                  .slice(0, index + 1)
                  .map((o) => ("send" in o ? o.send : `+${o.advanceMs}ms`));
                assert.deepEqual(
                  normalized(await observe()),
                  normalized(memory.observe()),
                  `seed ${seed}, after ${done.join(" ")}`,
                );
              }
            } finally {
              memory.stop();
            }
          }
        } finally {
          await h.dispose();
        }
      });
    }
  });
}
