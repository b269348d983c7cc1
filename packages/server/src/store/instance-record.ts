// Every InstanceRecord the server keeps goes through one object literal, so that all of them
// share one shape (hidden class) in V8. A record spread from the one before (`{ ...record,
// sequence }`, as each commit makes the next) is otherwise a clone of a clone of a clone, and V8 11
// (Node 20) copies such chains on a slow path: about half a microsecond a record, two records an
// event. Spreading a record made here is cheap; pass the result back through here.
import type { InstanceRecord } from "./store.js";

/** `record`'s fields in the one shape every kept record has. */
export function instanceRecord(record: InstanceRecord): InstanceRecord {
  return {
    orgId: record.orgId,
    machineName: record.machineName,
    instanceName: record.instanceName,
    id: record.id,
    machineVersionId: record.machineVersionId,
    snapshot: record.snapshot,
    status: record.status,
    sequence: record.sequence,
    pendingServices: record.pendingServices,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
  };
}
