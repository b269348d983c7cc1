// bench/realtime's Backstate side: the real server (startServer, with /rt at its default limits but
// room for every subscriber) on a fresh data dir, with the bootstrap admin and an admin session
// token for main.ts to set the machine up over HTTP. Run by main.ts in a child process.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomIds, systemClock } from "@backstate/server";
// @backstate/server does not export these (yet): load them from its build, next to its index.
import type * as AdminSessions from "../../packages/server/src/auth/admin-sessions.js";
import type * as HttpServer from "../../packages/server/src/http/server.js";
import { serveChild } from "../http/child.js";

export type BackstateInfo = { url: string; orgId: string; adminToken: string; pid: number };

const SUBSCRIBERS = Number(process.env.BENCH_SUBSCRIBERS ?? 5_000);

const fromServer = (path: string) => new URL(path, import.meta.resolve("@backstate/server")).href;
const { startServer } = (await import(fromServer("./http/server.js"))) as typeof HttpServer;
const { ensureBootstrapAdmin, mintAdminSession } = (await import(
  fromServer("./auth/admin-sessions.js")
)) as typeof AdminSessions;

const dataDir = mkdtempSync(join(tmpdir(), "backstate-bench-realtime-"));
const server = await startServer({
  dataDir,
  host: "127.0.0.1",
  port: 0,
  // The default is 20,000 sockets; one subscription per socket is far under maxSubscriptions.
  realtime: { maxConnections: Math.max(20_000, SUBSCRIBERS + 100) },
});
const { store } = server.backstate;
const { orgId, userId } = await ensureBootstrapAdmin(store, randomIds, systemClock);
const { token: adminToken } = await mintAdminSession(store, randomIds, systemClock, userId);

serveChild<BackstateInfo>({ url: server.url, orgId, adminToken, pid: process.pid }, async () => {
  await server.close();
  rmSync(dataDir, { recursive: true, force: true });
});
