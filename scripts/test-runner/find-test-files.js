// Finds the test files to run: compiled `*.test.js` under each workspace's dist/, and the
// repository tooling's own plain-JavaScript tests under scripts/ (never its fixtures).
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const COMPILED_ROOTS = ["packages", "bench"];
const TOOLING_ROOT = "scripts";

/** Paths relative to `rootDir`, e.g. `packages/token/dist/src/sign.test.js`. */
export function findTestFiles(rootDir) {
  const files = [];
  const walk = (relativeDir, accept) => {
    for (const name of readdirSync(join(rootDir, relativeDir))) {
      if (name === "node_modules" || name === "fixtures") continue;
      const path = join(relativeDir, name);
      if (statSync(join(rootDir, path)).isDirectory()) {
        walk(
          path,
          accept || (COMPILED_ROOTS.includes(relativeDir.split("/")[0]) && name === "dist"),
        );
      } else if (accept && name.endsWith(".test.js")) files.push(path);
    }
  };
  for (const root of COMPILED_ROOTS) if (existsSync(join(rootDir, root))) walk(root, false);
  if (existsSync(join(rootDir, TOOLING_ROOT))) walk(TOOLING_ROOT, true);
  return files;
}
