// Builds one machine version inside a sandbox process: a fresh context, the adapter script run in
// it, then the bundle linked and evaluated, and the adapter's install function, given the bundle's
// exports, yields the request handler.
// The adapter shares the context with the bundle, so it is no trust boundary: the host treats
// whatever a handler returns as untrusted JSON text.
import type vm from "node:vm";
import type { AdapterHandler, AdapterInstall } from "../sandbox-contract.js";
import { describeThrown } from "./describe.js";
import { createSandboxContext, type ContextHooks } from "./globals.js";
import { BundleError, evaluateBundle } from "./module-loader.js";
import type { SandboxFetch } from "./network.js";
import type { VendorSources } from "./protocol.js";

const INSTALL_GLOBAL = "__backstate_install";

/**
 * Loads a version; every failure is a BundleError, since the bundle is the thing that varies
 * (the adapter may refuse its exports, or the bundle may have tampered with the context).
 */
export async function loadMachineVersion(options: {
  versionId: string;
  code: string;
  vendor: VendorSources;
  adapter: vm.Script;
  hooks: ContextHooks;
  fetch: SandboxFetch;
  /** Receives, at once, what stops the version's timers once it is dropped. */
  onDispose?: (dispose: () => void) => void;
}): Promise<AdapterHandler> {
  const { context, notify, dispose } = createSandboxContext(
    options.hooks,
    `version ${options.versionId}`,
    options.fetch,
  );
  options.onDispose?.(dispose);
  // The adapter runs first, in the fresh context: it binds the built-ins it uses as it starts
  // (build-sandbox.js), so a bundle that swaps globals at load cannot reach it; its install
  // function is taken off the global before any machine code runs.
  let install: unknown;
  try {
    options.adapter.runInContext(context);
    install = (context as Record<string, unknown>)[INSTALL_GLOBAL];
    delete (context as Record<string, unknown>)[INSTALL_GLOBAL];
  } catch (error) {
    throw new BundleError(`the adapter did not run: ${describeThrown(error)}`, { cause: error });
  }
  if (typeof install !== "function") {
    throw new BundleError(`the adapter did not define ${INSTALL_GLOBAL}`);
  }
  const namespace = await evaluateBundle(context, options.code, options.vendor);

  let handler: unknown;
  try {
    handler = (install as AdapterInstall)(namespace, notify);
  } catch (error) {
    throw new BundleError(`the adapter refused the bundle: ${describeThrown(error)}`, {
      cause: error,
    });
  }
  if (typeof handler !== "function") {
    throw new BundleError("the adapter's install did not return a handler function");
  }
  return handler as AdapterHandler;
}
