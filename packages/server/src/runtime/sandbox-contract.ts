// The contract between the sandbox pool (host side), the sandbox process, and the adapter script
// that runs inside each machine version's vm context. Everything crossing a boundary is JSON text,
// so no object from one realm is ever handed to code in another.

/** Which machine version a call is for, and how to fetch its code on a cache miss. */
export type SandboxTarget = {
  orgId: string;
  versionId: string;
  /** The bundle source (one ES module). Called at most once per sandbox process per version. */
  loadCode: () => Promise<string>;
};

export type SandboxCallOptions = {
  /**
   * Calls with the same affinity go to the same sandbox process while it lives (an instance's
   * running services live there). Omit it for stateless calls.
   */
  affinity?: string;
  /** Overrides the pool's per-call CPU budget, in milliseconds. */
  timeoutMs?: number;
};

/**
 * What the adapter script defines in its context. The sandbox evaluates the adapter (an IIFE) in
 * the fresh context and takes `globalThis.__backstate_install` off it, before any machine code
 * runs; once the machine module has been linked and evaluated, it calls
 * `install(namespace, notify)` exactly once.
 * `install` returns the handler the sandbox calls for every request.
 */
export type AdapterInstall = (
  /** The machine module's namespace (default export, allowRead, allowWrite, …). */
  namespace: Record<string, unknown>,
  /** Sends a notification (JSON text) to the host, e.g. a finished service's event. */
  notify: (json: string) => void,
) => AdapterHandler;

/** Handles one request: `op` names it, `payload` is JSON text; the result is JSON text. */
export type AdapterHandler = (op: string, payload: string) => string | Promise<string>;

/** A notification from a sandbox, as the pool hands it to its listener. */
export type SandboxNotification = {
  /** The org the sandbox process was serving: the only org the notification may affect. */
  orgId: string;
  versionId: string;
  json: string;
};

/** The pool's report that a sandbox process died, with the affinities that lived in it. */
export type SandboxLoss = { orgId: string; affinities: string[]; reason: string };
