// A fixture machine run the plain XState way, in this process: `createActor(machine).start()`
// (v5) or `interpret(machine).start()` (v4), on XState's simulated clock. The reference the
// differential test holds the engine to.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";
import { createActor, SimulatedClock, type AnyStateMachine } from "xstate";
import { fixturePath } from "./package-root.js";

/** What the test compares after each event: as the admin read and the stored snapshot give it. */
export type Observed = {
  value: unknown;
  context: unknown;
  tags: string[];
  done: boolean;
  /** v5 only: the machine's output once done. */
  output?: unknown;
};

export type InMemoryRun = {
  send(event: { type: string }): Promise<void>;
  /** Moves XState's simulated clock forward, firing the delayed events that fall due. */
  advance(ms: number): Promise<void>;
  observe(): Observed;
  stop(): void;
};

/** Loads a fixture against the given XState generation, in this process, and starts it. */
export async function runInMemory(
  fixture: string,
  generation: 4 | 5,
  input: Record<string, unknown> = {},
): Promise<InMemoryRun> {
  const machine = await loadFixture(fixture, generation);
  return generation === 5 ? startV5(machine, input) : startV4(machine, input);
}

/**
 * Bundles the fixture with its xstate import pointing at the very module this process imports,
 * so the machine and the actor running it share one copy of XState.
 */
async function loadFixture(fixture: string, generation: 4 | 5): Promise<unknown> {
  const specifier = generation === 5 ? "xstate" : "xstate4";
  const result = await build({
    entryPoints: [fixturePath("machines", fixture)],
    bundle: true,
    write: false,
    platform: "neutral",
    format: "esm",
    logLevel: "silent",
    external: [specifier],
    ...(generation === 4 ? { alias: { xstate: "xstate4" } } : {}),
  });
  const resolved = import.meta.resolve(specifier);
  const text = result.outputFiles[0]!.text.replaceAll(
    new RegExp(`from\\s*"${specifier}"`, "g"),
    `from ${JSON.stringify(resolved)}`,
  );
  const dir = mkdtempSync(join(tmpdir(), "backstate-in-memory-"));
  try {
    const file = join(dir, `${fixture}.mjs`);
    writeFileSync(file, text);
    const module = (await import(pathToFileURL(file).href)) as { default: unknown };
    return module.default;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Lets promises and the microtasks they queue run: what "settled" means in memory. */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
}

async function startV5(machine: unknown, input: Record<string, unknown>): Promise<InMemoryRun> {
  const clock = new SimulatedClock();
  const actor = createActor(machine as AnyStateMachine, { clock, input });
  actor.start();
  await settle();
  return {
    async send(event) {
      actor.send(event);
      await settle();
    },
    async advance(ms) {
      clock.increment(ms);
      await settle();
    },
    observe() {
      const snapshot = actor.getSnapshot() as {
        value: unknown;
        tags: Set<string>;
        status: string;
        output?: unknown;
      };
      const persisted = actor.getPersistedSnapshot() as unknown as { context: unknown };
      const observed: Observed = {
        value: snapshot.value,
        context: persisted.context,
        tags: [...snapshot.tags],
        done: snapshot.status === "done",
      };
      if (snapshot.output !== undefined) observed.output = snapshot.output;
      return observed;
    },
    stop: () => actor.stop(),
  };
}

type V4Interpreter = {
  start(): V4Interpreter;
  stop(): void;
  send(event: unknown): void;
  state: { value: unknown; context: unknown; tags: Set<string>; done: boolean };
};

async function startV4(machine: unknown, input: Record<string, unknown>): Promise<InMemoryRun> {
  const xstate = (await import("xstate4")) as unknown as {
    interpret(machine: unknown, options: unknown): V4Interpreter;
  };
  const { SimulatedClock: V4Clock } = (await import("xstate4/lib/SimulatedClock.js")) as {
    SimulatedClock: new () => { increment(ms: number): void };
  };
  const clock = new V4Clock();
  const v4 = machine as { withContext(context: unknown): unknown; context: unknown };
  // As the engine starts it: the caller's context shallow-merged over the machine's own.
  const merged = { ...(v4.context as object), ...input };
  const started = xstate.interpret(v4.withContext(merged), { clock }).start();
  await settle();
  return {
    async send(event) {
      started.send(event);
      await settle();
    },
    async advance(ms) {
      clock.increment(ms);
      await settle();
    },
    observe() {
      const state = started.state;
      return {
        value: state.value,
        context: state.context,
        tags: [...state.tags],
        done: state.done,
      };
    },
    stop: () => started.stop(),
  };
}
