// A step request's JSON with its snapshot given as JSON text: the engine keeps the text a commit
// wrote (engine/machine-json.ts), and splicing it in spares parsing it and writing it again.

/** A request without its snapshot; none may ride along in it (a second key would win the parse). */
export type WithoutSnapshot<T> = Omit<T, "snapshot"> & { snapshot?: never };

/**
 * `request` as JSON, with `snapshotJson` (JSON text) as its `snapshot`: what JSON.stringify writes
 * for `{ snapshot, ...request }`, the snapshot first. An undefined snapshot is left out, as
 * JSON.stringify leaves out an undefined property.
 */
export function withSnapshotJson(
  snapshotJson: string | undefined,
  request: WithoutSnapshot<object>,
): string {
  const rest = JSON.stringify(request);
  if (snapshotJson === undefined) return rest;
  if (rest === "{}") return `{"snapshot":${snapshotJson}}`;
  return `{"snapshot":${snapshotJson},${rest.slice(1)}`;
}
