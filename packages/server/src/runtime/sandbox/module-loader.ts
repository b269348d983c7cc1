// Links and evaluates a machine bundle (one ES module) inside its context. The only imports a
// bundle may make are XState: "xstate" (v5) and "npm:xstate" (v4, as the State Backed CLI emits
// them), each served by a vendored single-file build evaluated in the same context, so every
// version gets its own XState instance and no module state is shared between versions.
import vm from "node:vm";
import { describeThrown } from "./describe.js";
import { refuseDynamicImport } from "./globals.js";
import type { VendorSources } from "./protocol.js";

/** The bundle cannot be used: it does not parse, imports something else, or throws on load. */
export class BundleError extends Error {
  override name = "BundleError";
  readonly code = "invalid-bundle";
}

const VENDOR_SPECIFIERS: Record<string, keyof VendorSources> = {
  xstate: "xstate5",
  "npm:xstate": "xstate4",
};

/**
 * Evaluates `code` as a module in `context` and returns its namespace. Every failure (syntax,
 * linking, a throw or rejection during evaluation) is a BundleError.
 */
export async function evaluateBundle(
  context: vm.Context,
  code: string,
  vendor: VendorSources,
): Promise<Record<string, unknown>> {
  let bundle: vm.SourceTextModule;
  try {
    bundle = new vm.SourceTextModule(code, {
      context,
      identifier: "backstate:bundle",
      importModuleDynamically: refuseDynamicImport,
    });
  } catch (error) {
    throw new BundleError(`the bundle does not parse: ${describeThrown(error)}`, { cause: error });
  }

  const vendored = new Map<string, vm.SourceTextModule>();
  const linker = (specifier: string): vm.SourceTextModule => {
    const name = Object.hasOwn(VENDOR_SPECIFIERS, specifier)
      ? VENDOR_SPECIFIERS[specifier]
      : undefined;
    if (name === undefined) {
      throw new BundleError(
        `the bundle imports ${JSON.stringify(specifier)}; a bundle may import only "xstate" ` +
          `(XState v5) and "npm:xstate" (XState v4): bundle every other dependency into it`,
      );
    }
    let module = vendored.get(specifier);
    if (module === undefined) {
      module = new vm.SourceTextModule(vendor[name], {
        context,
        identifier: `backstate:${specifier}`,
        importModuleDynamically: refuseDynamicImport,
      });
      vendored.set(specifier, module);
    }
    return module;
  };

  try {
    await bundle.link(linker);
  } catch (error) {
    if (error instanceof BundleError) throw error;
    throw new BundleError(`the bundle does not link: ${describeThrown(error)}`, { cause: error });
  }
  try {
    await bundle.evaluate();
  } catch (error) {
    throw new BundleError(`the bundle threw while loading: ${describeThrown(error)}`, {
      cause: error,
    });
  }
  return bundle.namespace as Record<string, unknown>;
}
