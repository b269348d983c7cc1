// How domain records look on the wire: ISO dates, `clientInfo` as a string, and the State with
// `publicContext` always present (the official client and the realtime message require it).
import type { InstanceState } from "../engine/instance-state.js";
import type { EpochMs, MachineVersionInfo } from "../store/store.js";

export type WireVersionInfo = { id: string; createdAt: string; clientInfo: string };

export type WireState = Omit<InstanceState, "publicContext"> & { publicContext: unknown };

export const isoDate = (ms: EpochMs): string => new Date(ms).toISOString();

export function wireVersionInfo(version: MachineVersionInfo): WireVersionInfo {
  return {
    id: version.id,
    createdAt: isoDate(version.createdAt),
    clientInfo: version.clientInfo ?? "",
  };
}

export function wireState(state: InstanceState): WireState {
  return {
    state: state.state,
    publicContext: state.publicContext ?? {},
    tags: state.tags,
    done: state.done,
    ts: state.ts,
  };
}
