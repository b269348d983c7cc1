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
  if (snapshotJson === undefined) return JSON.stringify(request);
  return withJsonFirst("snapshot", snapshotJson, request);
}

/**
 * What JSON.stringify writes for `{ [key]: value, ...rest }`, where `json` is value's JSON text
 * (and `rest` has no `key`): the text spliced in as it is, neither parsed nor written again. The
 * stored envelope is written this way too (engine/instance-state.ts).
 */
export function withJsonFirst(key: string, json: string, rest: object): string {
  const restJson = JSON.stringify(rest);
  const opening = `{${JSON.stringify(key)}:${json}`;
  return restJson === "{}" ? `${opening}}` : `${opening},${restJson.slice(1)}`;
}
