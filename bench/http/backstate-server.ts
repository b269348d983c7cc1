// bench/http's Backstate side, run by main.ts in a child process.
import { serveBackstateNode } from "./backstate-node.js";

export type { BackstateInfo } from "./backstate-node.js";

await serveBackstateNode("http");
