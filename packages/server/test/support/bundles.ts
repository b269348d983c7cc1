// Builds machine bundles for tests the ways users build them: with esbuild, one ESM file.
import { build } from "esbuild";
import { fixturePath } from "./package-root.js";

/**
 * How xstate gets into the bundle:
 * - "v4-cli": xstate 4 inlined and minified, exactly as State Backed's CLI built bundles;
 * - "v4-npm": xstate 4 left as `import … from "npm:xstate"` (newer CLIs), resolved by the runtime;
 * - "v5-inline": xstate 5 inlined;
 * - "v5-import": xstate 5 left as `import … from "xstate"`, resolved by the runtime.
 */
export type BundleStyle = "v4-cli" | "v4-npm" | "v5-inline" | "v5-import";

const cache = new Map<string, Promise<string>>();

export function bundleFixture(name: string, style: BundleStyle): Promise<string> {
  const key = `${name}:${style}`;
  let bundle = cache.get(key);
  if (!bundle) {
    bundle = buildBundle(fixturePath("machines", name), style);
    cache.set(key, bundle);
  }
  return bundle;
}

export async function buildBundle(entry: string, style: BundleStyle): Promise<string> {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    platform: "browser",
    format: "esm",
    minify: true,
    keepNames: true,
    legalComments: "none",
    define: { "process.env.NODE_ENV": '"production"' },
    logLevel: "silent",
    ...styleOptions(style),
  });
  const file = result.outputFiles[0];
  if (!file) throw new Error(`esbuild produced nothing for ${entry}`);
  return file.text;
}

function styleOptions(style: BundleStyle) {
  switch (style) {
    case "v4-cli":
      return { alias: { xstate: "xstate4" } };
    case "v4-npm":
      return { alias: { xstate: "npm:xstate" }, external: ["npm:xstate"] };
    case "v5-inline":
      return {};
    case "v5-import":
      return { external: ["xstate"] };
  }
}
