// A Backstate node for the HTTP and realtime benchmarks: the real server (startServer) on a fresh
// data dir, with the bootstrap admin and an admin session token, answering its facts to the
// parent process (see child.ts) and removing its data dir when closed.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ensureBootstrapAdmin,
  mintAdminSession,
  randomIds,
  startServer,
  systemClock,
  type ServerOptions,
} from "@backstate/server";
import { serveChild } from "./child.js";

export type BackstateInfo = { url: string; orgId: string; adminToken: string; pid: number };

export async function serveBackstateNode(
  name: string,
  options: Partial<ServerOptions> = {},
): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), `backstate-bench-${name}-`));
  const server = await startServer({ ...options, dataDir, host: "127.0.0.1", port: 0 });
  const { store } = server.backstate;
  const { orgId, userId } = await ensureBootstrapAdmin(store, randomIds, systemClock);
  const { token: adminToken } = await mintAdminSession(store, randomIds, systemClock, userId);
  serveChild<BackstateInfo>({ url: server.url, orgId, adminToken, pid: process.pid }, async () => {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
}
