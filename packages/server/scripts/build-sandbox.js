// Builds what the sandbox evaluates inside vm contexts, into packages/server/dist/vendor/: XState
// v5 ("xstate") and v4 (installed as "xstate4") as single-file ES modules with no imports, and the
// adapter (src/runtime/adapter/index.ts) as an IIFE when it exists. Also the sandbox process's own
// entry (src/runtime/sandbox/child.ts) with everything it imports, as one file in
// dist/sandbox/: that folder is all a sandbox may read (see sandbox-launch.ts), so its code can
// use npm packages and modules from the rest of src/ without widening that. Run after `tsc -b`.
import { build } from "esbuild";
import { existsSync, statSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const serverDir = fileURLToPath(new URL("..", import.meta.url));
const vendorDir = fileURLToPath(new URL("../dist/vendor/", import.meta.url));
const adapterEntry = fileURLToPath(new URL("../src/runtime/adapter/index.ts", import.meta.url));
const childEntry = fileURLToPath(new URL("../src/runtime/sandbox/child.ts", import.meta.url));
const childOutfile = fileURLToPath(new URL("../dist/sandbox/child.js", import.meta.url));

const common = {
  bundle: true,
  // No Node built-ins exist in a sandbox context: resolving one must fail the build, not the run.
  platform: "neutral",
  mainFields: ["module", "main"],
  conditions: ["module", "import"],
  target: "es2022",
  // XState reads process.env.NODE_ENV for dev-only checks; there is no process in the sandbox.
  define: { "process.env.NODE_ENV": '"production"' },
  legalComments: "inline",
  logLevel: "warning",
};

// Inside a vm context, every free reference to a global (Object, Array, Set, …) is answered by
// the context's interceptor, a call into C++ that V8 cannot cache: XState's transitions ran
// about 1.5x slower there than with those names bound. So what runs in a context first binds the
// ECMAScript intrinsics it uses to its own scope, taken from the context's global when it starts:
// the adapter before the bundle is evaluated (machine-version.ts), XState before the bundle's body
// runs (it is a dependency of the bundle's module), so machine code can swap neither's built-ins.
// Only intrinsics of the realm, which every context has: the globals the sandbox adds per context
// (timers, console, fetch) stay live. (minifySyntax also writes `Infinity` as `1 / 0`.)
const INTRINSICS = [
  "Object",
  "Function",
  "Array",
  "Map",
  "Set",
  "WeakMap",
  "Symbol",
  "JSON",
  "Math",
  "Promise",
  "Error",
  "TypeError",
  "RangeError",
  "String",
  "Number",
  "Boolean",
  "Reflect",
  "Date",
  "isNaN",
];
const bindIntrinsics = `const { ${INTRINSICS.join(", ")} } = globalThis;`;

/** Re-exports `pkg` as one self-contained ES module, its intrinsics bound in module scope. */
async function vendorModule(pkg, outfile) {
  await build({
    ...common,
    stdin: { contents: `export * from ${JSON.stringify(pkg)};`, resolveDir: serverDir },
    format: "esm",
    banner: { js: bindIntrinsics },
    minifySyntax: true,
    outfile,
  });
}

function report(outfile) {
  const kb = Math.round(statSync(outfile).size / 1024);
  console.log(`build-sandbox: wrote ${outfile} (${kb} kB)`);
}

const xstate5 = `${vendorDir}xstate5.js`;
const xstate4 = `${vendorDir}xstate4.js`;
await vendorModule("xstate", xstate5);
report(xstate5);
await vendorModule("xstate4", xstate4);
report(xstate4);

if (existsSync(adapterEntry)) {
  const adapter = `${vendorDir}adapter.js`;
  // A script, not a module: its intrinsics are bound in a function around it, since a `const` at
  // a script's top level would land in the context's global scope, shared with the bundle.
  const built = await build({
    ...common,
    entryPoints: [adapterEntry],
    format: "iife",
    minifySyntax: true,
    write: false,
  });
  const [output] = built.outputFiles;
  // "use strict" first: the build's own directive is no longer one once it follows the binding.
  writeFileSync(adapter, `(() => {\n"use strict";\n${bindIntrinsics}\n${output.text}})();\n`);
  report(adapter);
} else {
  console.log(`build-sandbox: no adapter at ${adapterEntry} yet, skipped`);
}

// The sandbox process itself, a Node program: Node's built-ins stay imports. CommonJS packages
// (undici) bundled into an ES module still call require() for built-ins, so the module has one.
await build({
  entryPoints: [childEntry],
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  banner: {
    js: [
      'import { createRequire as __sandboxCreateRequire } from "node:module";',
      "const require = __sandboxCreateRequire(import.meta.url);",
    ].join("\n"),
  },
  legalComments: "inline",
  logLevel: "warning",
  outfile: childOutfile,
});
report(childOutfile);
