// Finds this package's root from a compiled test file, so tests can read sources and fixtures.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export function packageRoot(from: string = import.meta.url): string {
  let dir = dirname(fileURLToPath(from));
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error("package.json not found above " + from);
    dir = parent;
  }
  return dir;
}

export function fixturePath(...parts: string[]): string {
  return join(packageRoot(), "test", "fixtures", ...parts);
}
