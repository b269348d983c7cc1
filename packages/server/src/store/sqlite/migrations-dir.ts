// Locates the .sql migrations at run time. tsc does not copy them to dist/, so they are read from
// the package's src/ folder (published alongside dist/), found by walking up from this module.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const RELATIVE = join("src", "store", "sqlite", "migrations");

/** The migrations folder of the package that contains `moduleUrl` (this module by default). */
export function findMigrationsDir(moduleUrl: string = import.meta.url): string {
  let dir = dirname(fileURLToPath(moduleUrl));
  for (;;) {
    // The package root is the nearest folder with a package.json; requiring the migrations
    // folder too skips any package.json a build might drop inside dist/.
    const candidate = join(dir, RELATIVE);
    if (existsSync(join(dir, "package.json")) && existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) {
      throw new Error(`cannot find ${RELATIVE} above ${fileURLToPath(moduleUrl)}`);
    }
    dir = parent;
  }
}
