#!/usr/bin/env node
// The `backstate` command as npm links it (node_modules/.bin/backstate). It lives outside dist/
// so that `npm ci` can link it before the build that compiles the CLI into dist/.
try {
  await import("../dist/src/main.js");
} catch (error) {
  if (error?.code === "ERR_MODULE_NOT_FOUND" && String(error.message).includes("main.js")) {
    console.error(
      "backstate: the CLI is not built yet; run `npm run build` at the repository root",
    );
    process.exit(1);
  }
  throw error;
}
