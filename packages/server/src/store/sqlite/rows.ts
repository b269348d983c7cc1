// Maps rows read by statements.ts to the port's records: NULL becomes undefined, JSON columns
// are parsed and checked, since a record must never carry a shape its type does not promise.
import { BackstateError } from "../../errors.js";
import type {
  InstanceRecord,
  InstanceStatus,
  KeyRecord,
  MachineRecord,
  MachineVersionRecord,
  TimerRecord,
} from "../store.js";
import type { DueTimerRow, InstanceRow, KeyRow, MachineRow, VersionRow } from "./statements.js";

export function toKeyRecord(row: KeyRow): KeyRecord {
  return { ...row, scopes: parseStringArray(row.scopes, "keys.scopes") };
}

export function toMachineRecord(row: MachineRow): MachineRecord {
  return { ...row, currentVersionId: row.currentVersionId ?? undefined };
}

export function toVersionRecord(row: VersionRow): MachineVersionRecord {
  return { ...row, clientInfo: row.clientInfo ?? undefined };
}

export function toInstanceRecord(row: InstanceRow): InstanceRecord {
  return {
    ...row,
    status: toStatus(row.status),
    pendingServices: parseStringArray(row.pendingServices, "instances.pending_services"),
  };
}

export function toTimerRecord(row: DueTimerRow): TimerRecord {
  const { orgId, machineName, instanceName, ...timer } = row;
  return { ...timer, instance: { orgId, machineName, instanceName } };
}

function toStatus(status: string): InstanceStatus {
  if (status === "running" || status === "paused") return status;
  throw corrupt("instances.status", status);
}

function parseStringArray(text: string, column: string): string[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw corrupt(column, text);
  }
  if (!Array.isArray(value) || !value.every((item) => typeof item === "string")) {
    throw corrupt(column, text);
  }
  return value;
}

function corrupt(column: string, value: string): BackstateError {
  return new BackstateError("store-error", `unexpected value in ${column}: ${value.slice(0, 100)}`);
}
