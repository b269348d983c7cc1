// bench/http's baseline, what a user would write by hand: a node:http server over XState v5 and
// better-sqlite3 (WAL, synchronous=FULL), one table of snapshots. Per request: parse the JSON
// body, load the row, compute the transition, save the row, answer the state as JSON. It also
// serves POST /empty, which answers at once, to measure the load generator's own ceiling.
// Run by main.ts in a child process.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openBaseline } from "../engine/baseline.js";
import { instanceName } from "../engine/toggle-machine.js";
import { serveChild } from "./child.js";

const INSTANCES = Number(process.env.BENCH_INSTANCES ?? 1_000);
const EVENTS_PATH = /^\/machines\/toggle\/i\/([^/]+)\/events$/;

const dir = mkdtempSync(join(tmpdir(), "backstate-bench-http-baseline-"));
const baseline = openBaseline(join(dir, "baseline.db"), { history: false });
for (let i = 0; i < INSTANCES; i++) baseline.create(instanceName(i));

function answer(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

function handle(req: IncomingMessage, res: ServerResponse, raw: string): void {
  if (req.method === "POST" && req.url === "/empty") return answer(res, 200, {});
  const match = req.method === "POST" ? EVENTS_PATH.exec(req.url ?? "") : null;
  if (!match?.[1]) return answer(res, 404, { error: "not found" });
  let event: { type: string };
  try {
    const body = JSON.parse(raw) as { event?: string | { type: string } };
    if (body.event === undefined) return answer(res, 400, { error: "no event" });
    event = typeof body.event === "string" ? { type: body.event } : body.event;
  } catch {
    return answer(res, 400, { error: "invalid JSON" });
  }
  try {
    answer(res, 200, baseline.send(decodeURIComponent(match[1]), event));
  } catch (err) {
    answer(res, 500, { error: String(err) });
  }
}

const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  let raw = "";
  req.setEncoding("utf8");
  req.on("data", (chunk: string) => (raw += chunk));
  req.on("end", () => handle(req, res, raw));
});
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const { port } = server.address() as AddressInfo;

serveChild({ url: `http://127.0.0.1:${port}` }, async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  baseline.close();
  rmSync(dir, { recursive: true, force: true });
});
