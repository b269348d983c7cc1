// Maps the rows adapters read to the port's records: NULL becomes undefined, JSON columns are
// parsed and checked, since a record must never carry a shape its type does not promise. Every
// adapter aliases its columns to these row types' field names.
import { BackstateError } from "../errors.js";
import { instanceRecord } from "./instance-record.js";
import type {
  EpochMs,
  InstanceRecord,
  InstanceStatus,
  InstanceSummary,
  KeyInfo,
  KeyRecord,
  MachineRecord,
  MachineSummary,
  MachineVersionInfo,
  MachineVersionRecord,
  OrgMembership,
  OrgRole,
  TimerRecord,
} from "./store.js";

export type KeyRow = {
  id: string;
  orgId: string;
  name: string;
  secret: string;
  scopes: string;
  createdAt: number;
};
export type KeyInfoRow = Omit<KeyRow, "secret">;
export type MembershipRow = { id: string; name: string; createdAt: number; role: string };
export type MachineRow = {
  orgId: string;
  name: string;
  currentVersionId: string | null;
  indexes: string;
  createdAt: number;
};
/** A machine with its current version's columns (all NULL when it has none). */
export type MachineSummaryRow = MachineRow & {
  versionClientInfo: string | null;
  versionCreatedAt: number | null;
};
export type VersionInfoRow = { id: string; clientInfo: string | null; createdAt: number };
export type VersionRow = {
  id: string;
  orgId: string;
  machineName: string;
  code: string;
  hash: string;
  clientInfo: string | null;
  indexSelectors: string | null;
  createdAt: number;
};
export type InstanceRow = {
  id: number;
  orgId: string;
  machineName: string;
  instanceName: string;
  machineVersionId: string;
  snapshot: string;
  status: string;
  sequence: number;
  pendingServices: string;
  createdAt: number;
  updatedAt: number;
};
export type InstanceSummaryRow = {
  name: string;
  status: string;
  createdAt: number;
  versionId: string;
  versionClientInfo: string | null;
  versionCreatedAt: number;
};
export type DueTimerRow = {
  id: number;
  instanceId: number;
  key: string;
  dueAt: number;
  event: string;
  attempts: number;
  orgId: string;
  machineName: string;
  instanceName: string;
};

export function toKeyRecord(row: KeyRow): KeyRecord {
  return { ...row, scopes: parseStringArray(row.scopes, "keys.scopes") };
}

export function toKeyInfo(row: KeyInfoRow): KeyInfo {
  return { ...row, scopes: parseStringArray(row.scopes, "keys.scopes") };
}

export function toMembership(row: MembershipRow): OrgMembership {
  const { role, ...org } = row;
  return { org, role: toRole(role) };
}

export function toRole(role: string): OrgRole {
  if (role === "admin" || role === "write" || role === "read") return role;
  throw corrupt("org_members.role", role);
}

export function toMachineRecord(row: MachineRow): MachineRecord {
  return {
    orgId: row.orgId,
    name: row.name,
    currentVersionId: row.currentVersionId ?? undefined,
    indexes: parseStringArray(row.indexes, "machines.indexes"),
    createdAt: row.createdAt,
  };
}

export function toMachineSummary(row: MachineSummaryRow): MachineSummary {
  const { versionClientInfo, versionCreatedAt, ...machine } = row;
  const { currentVersionId } = machine;
  // The composite foreign key guarantees the joined version exists whenever the id is set.
  const currentVersion =
    currentVersionId === null || versionCreatedAt === null
      ? undefined
      : toVersionInfo({
          id: currentVersionId,
          clientInfo: versionClientInfo,
          createdAt: versionCreatedAt,
        });
  return { ...toMachineRecord(machine), currentVersion };
}

export function toVersionRecord(row: VersionRow): MachineVersionRecord {
  return {
    ...row,
    clientInfo: row.clientInfo ?? undefined,
    indexSelectors:
      row.indexSelectors === null
        ? undefined
        : (JSON.parse(row.indexSelectors) as Record<string, string>),
  };
}

/** A version's index selectors as the column keeps them: JSON text, or NULL for none. */
export function selectorsText(version: MachineVersionRecord): string | null {
  return version.indexSelectors === undefined ? null : JSON.stringify(version.indexSelectors);
}

export function toVersionInfo(row: VersionInfoRow): MachineVersionInfo {
  return { id: row.id, clientInfo: row.clientInfo ?? undefined, createdAt: row.createdAt };
}

export function toInstanceSummary(row: InstanceSummaryRow): InstanceSummary {
  return {
    name: row.name,
    status: toStatus(row.status),
    machineVersion: toVersionInfo({
      id: row.versionId,
      clientInfo: row.versionClientInfo,
      createdAt: row.versionCreatedAt,
    }),
    createdAt: row.createdAt,
  };
}

export function toInstanceRecord(row: InstanceRow): InstanceRecord {
  return instanceRecord({
    ...row,
    status: toStatus(row.status),
    pendingServices: parseStringArray(row.pendingServices, "instances.pending_services"),
  });
}

/** A timer a claim just leased until `claimedUntil`. */
export function toTimerRecord(row: DueTimerRow, claimedUntil: EpochMs): TimerRecord {
  const { orgId, machineName, instanceName, ...timer } = row;
  return { ...timer, instance: { orgId, machineName, instanceName }, claimedUntil };
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
