// bench/realtime's Backstate side, run by main.ts in a child process: /rt at its default limits
// but with room for every subscriber.
import { serveBackstateNode } from "../http/backstate-node.js";

export type { BackstateInfo } from "../http/backstate-node.js";

const SUBSCRIBERS = Number(process.env.BENCH_SUBSCRIBERS ?? 5_000);

// The default is 20,000 sockets; one subscription per socket is far under maxSubscriptions.
await serveBackstateNode("realtime", {
  realtime: { maxConnections: Math.max(20_000, SUBSCRIBERS + 100) },
});
