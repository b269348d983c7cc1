// What a user would write by hand: XState v5 and better-sqlite3 (synchronous=FULL) in-process;
// per event one transaction that loads the snapshot, transitions, saves it and (unless told not
// to) a history row.
import Database from "better-sqlite3";
import { initialTransition, transition } from "xstate";
import { toggleMachine } from "./toggle-machine.js";

export type Baseline = {
  create(name: string): void;
  send(name: string, event: { type: string }): unknown;
  close(): void;
};

export type BaselineOptions = {
  /** Also write a history row per event (default true); bench/http's baseline keeps one table. */
  history?: boolean;
};

export function openBaseline(path: string, options: BaselineOptions = {}): Baseline {
  const history = options.history ?? true;
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.exec("CREATE TABLE instances (name TEXT PRIMARY KEY, snapshot TEXT NOT NULL)");
  if (history) {
    db.exec(`CREATE TABLE history (name TEXT NOT NULL, seq INTEGER NOT NULL, event TEXT NOT NULL,
                                   state TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (name, seq))`);
  }
  const load = db.prepare<[string], { snapshot: string }>(
    "SELECT snapshot FROM instances WHERE name = ?",
  );
  const insert = db.prepare("INSERT INTO instances (name, snapshot) VALUES (?, ?)");
  const save = db.prepare("UPDATE instances SET snapshot = ? WHERE name = ?");
  const record = history
    ? db.prepare(
        "INSERT INTO history (name, seq, event, state, at) VALUES (?, (SELECT COUNT(*) + 1 FROM history WHERE name = ?), ?, ?, ?)",
      )
    : undefined;
  const step = db.transaction((name: string, event: { type: string }) => {
    const row = load.get(name);
    if (!row) throw new Error(`no instance ${name}`);
    const restored = toggleMachine.resolveState(JSON.parse(row.snapshot) as never);
    const [next] = transition(toggleMachine, restored, event as never);
    save.run(JSON.stringify(toggleMachine.getPersistedSnapshot(next)), name);
    record?.run(name, name, JSON.stringify(event), JSON.stringify(next.value), Date.now());
    return { state: next.value, publicContext: next.context.public };
  });
  return {
    create(name) {
      const [snapshot] = initialTransition(toggleMachine);
      insert.run(name, JSON.stringify(toggleMachine.getPersistedSnapshot(snapshot)));
    },
    send: (name, event) => step(name, event),
    close: () => db.close(),
  };
}
