// Crash test: a process running the engine under concurrent load is killed with SIGKILL at random
// moments, twenty times, and restarted. Afterwards every acknowledged event is in its instance's
// history exactly once, every effect that ran belongs to a committed transition, and every
// pending timer has fired.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { openSqliteStore } from "../../src/store/sqlite/index.js";
import { ORG } from "../support/engine-harness.js";
import { runWorker, supportWorker } from "../support/worker-process.js";

const WORKER = supportWorker("crash-worker");
const run = (mode: string, dir: string, extra: string[] = []) =>
  runWorker(WORKER, [mode, dir, ...extra]);
const ROUNDS = 20;
const INSTANCES = 12;

async function until(predicate: () => boolean, timeoutMs: number) {
  const end = Date.now() + timeoutMs;
  while (!predicate() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
}

test(
  `SIGKILL ${ROUNDS} times under load: acknowledged events kept once, no effect without its commit, timers fire`,
  { timeout: 600_000 },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "backstate-crash-"));
    const effects: string[] = [];
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        try {
          effects.push((JSON.parse(body) as { id: string }).id);
        } catch {
          // a write cut short by the kill
        }
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const reportUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    try {
      const setup = run("setup", dir, [reportUrl]);
      assert.equal(await setup.exited, 0, "setup");

      const acked = new Set<string>();
      for (let round = 0; round < ROUNDS; round++) {
        const load = run("load", dir);
        await until(() => load.lines.includes("ready"), 20_000);
        await new Promise((r) => setTimeout(r, 200 + Math.random() * 800));
        load.child.kill("SIGKILL");
        await load.exited;
        for (const line of load.lines) if (line.startsWith("ack ")) acked.add(line.slice(4));
      }
      assert.ok(acked.size > ROUNDS, `load made progress (${acked.size} acknowledged events)`);

      const drain = run("drain", dir);
      assert.equal(await drain.exited, 0, "drain");
      assert.deepEqual(
        JSON.parse(drain.lines.find((l) => l.startsWith("drained "))?.slice(8) ?? "{}"),
        { due: null, armed: 0 },
      );

      const store = openSqliteStore({ path: join(dir, "backstate.db") });
      await store.migrate();
      const seen = new Map<string, number>();
      for (let i = 0; i < INSTANCES; i++) {
        const rows = await store.listTransitions(
          { orgId: ORG, machineName: "crash", instanceName: `c${i}` },
          { limit: 1_000_000 },
        );
        rows.forEach((row, index) => assert.equal(row.sequence, index + 1, "history has no gaps"));
        for (const row of rows) {
          const id = (JSON.parse(row.event) as { id?: string }).id;
          if (id) seen.set(id, (seen.get(id) ?? 0) + 1);
        }
      }
      await store.close();
      for (const id of acked)
        assert.equal(seen.get(id), 1, `acknowledged event ${id} is in history exactly once`);
      for (const [id, times] of seen) assert.equal(times, 1, `event ${id} recorded once`);
      const incEffects = effects.filter((id) => !id.startsWith("timer:"));
      t.diagnostic(
        `acknowledged ${acked.size}, recorded ${seen.size}, effects ${incEffects.length}, timer effects ${effects.length - incEffects.length}`,
      );
      assert.ok(
        incEffects.length > 0 && effects.length > incEffects.length,
        "effects and timers ran",
      );
      for (const id of incEffects)
        assert.ok(seen.has(id), `effect ${id} ran for a committed transition`);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
