// Runs every compiled test file (`*.test.js` under each workspace's dist/) with Node's test runner.
// Node 20's `--test` takes no globs, so the files are found here and passed explicitly.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const roots = ["packages", "bench"];
const files = [];

function walk(dir, inDist) {
  for (const name of readdirSync(dir)) {
    if (name === "node_modules") continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, inDist || name === "dist");
    else if (inDist && name.endsWith(".test.js")) files.push(path);
  }
}
for (const root of roots) walk(root, false);

// Extra arguments narrow the run: `npm test -- token` runs only files whose path contains "token".
const filters = process.argv.slice(2);
const selected = filters.length ? files.filter((f) => filters.some((x) => f.includes(x))) : files;
if (selected.length === 0) {
  console.error("no test files found; did the build run?");
  process.exit(1);
}
const result = spawnSync(process.execPath, ["--test", ...selected], { stdio: "inherit" });
process.exit(result.status ?? 1);
