// The machine versions whose code a sandbox process holds: the pool sends a version's code before
// its first call there, counts the calls using it, and past a limit asks the process to drop the
// least recently used versions no call is using, so a process does not grow with every version
// it ever ran or checked. The bookkeeping lives on the process (SandboxProcess.versions and
// versionCalls); these functions are the only ones to change it.
import type { SandboxTarget } from "./sandbox-contract.js";
import type { SandboxProcess } from "./sandbox-process.js";

/** Version entries (SandboxProcess.versions) whose code is known to be in their process. */
const sent = new WeakSet<Promise<void>>();

/**
 * Sends the version's code to the process unless it has it (or is getting it) already, and
 * counts the call as using it. When its unload is being asked, waits for the answer: dropped,
 * the code is sent again. Past `maxVersions`, idle versions are unloaded (see unloadIdleVersions).
 */
export async function ensureVersion(
  sandbox: SandboxProcess,
  target: SandboxTarget,
  maxVersions: number,
): Promise<void> {
  const { versionId } = target;
  for (;;) {
    let loaded = sandbox.versions.get(versionId);
    if (loaded === undefined) {
      loaded = (async () => {
        const code = await target.loadCode();
        if (typeof code !== "string") throw new TypeError("loadCode must resolve to the bundle");
        sandbox.sendCode(versionId, code);
      })();
      const attempt = loaded;
      sandbox.versions.set(versionId, attempt);
      attempt.then(
        () => unloadIdleVersions(sandbox, maxVersions),
        () => {
          if (sandbox.versions.get(versionId) === attempt) sandbox.versions.delete(versionId);
        },
      );
    }
    await loaded;
    if (sandbox.versions.get(versionId) !== loaded) continue; // dropped meanwhile: again
    sent.add(loaded);
    // In the same turn as the check that the code is there: no unload can come in between.
    useLoadedVersion(sandbox, versionId);
    return;
  }
}

/**
 * Counts the call as using the version when its code is known to be in the process (sent, and
 * no unload of it being asked), in this same turn: the usual call, which then needs no wait for
 * ensureVersion. False, counting nothing, otherwise.
 */
export function useLoadedVersion(sandbox: SandboxProcess, versionId: string): boolean {
  const loaded = sandbox.versions.get(versionId);
  if (loaded === undefined || !sent.has(loaded)) return false;
  countCall(sandbox, versionId, +1);
  // Re-inserted: the Map's order is the order versions were last used in.
  sandbox.versions.delete(versionId);
  sandbox.versions.set(versionId, loaded);
  return true;
}

/** Counts a call of the version, counted by useLoadedVersion, as settled in the process. */
export function versionCallSettled(sandbox: SandboxProcess, versionId: string): void {
  countCall(sandbox, versionId, -1);
}

/**
 * Past the limit, asks the process to drop its least recently used versions that no call is
 * using (it keeps those its handler says something still lives in). A call for a version whose
 * unload is being asked waits for the answer (see ensureVersion).
 */
function unloadIdleVersions(sandbox: SandboxProcess, maxVersions: number): void {
  let excess = sandbox.versions.size - maxVersions;
  if (excess <= 0 || !sandbox.alive) return;
  for (const [versionId, loaded] of sandbox.versions) {
    if (excess <= 0) break;
    // Only code known to be there (not still being fetched, nor being unloaded) and unused.
    if (!sent.has(loaded) || sandbox.versionCalls.has(versionId)) continue;
    excess--;
    const attempt = sandbox.unload(versionId).then((dropped) => {
      if (sandbox.versions.get(versionId) !== attempt) return;
      sandbox.versions.delete(versionId);
      if (dropped) return;
      // Kept (something of it lives there): its code is there, and the versions behind it
      // are asked first next time.
      sent.add(attempt);
      sandbox.versions.set(versionId, attempt);
    });
    // Set over the same key: the Map's order, and this walk over it, stay as they are.
    sandbox.versions.set(versionId, attempt);
  }
}

/** Counts a call of the version assigned to the process (+1) or settled there (-1). */
function countCall(sandbox: SandboxProcess, versionId: string, delta: 1 | -1): void {
  const calls = (sandbox.versionCalls.get(versionId) ?? 0) + delta;
  if (calls > 0) sandbox.versionCalls.set(versionId, calls);
  else sandbox.versionCalls.delete(versionId);
}
