// Shared helpers of the storage tests: seeding an org with a machine, and building commits.
import type {
  InstanceKey,
  MachineVersionRecord,
  Store,
  TimerToArm,
  TransitionCommit,
} from "../../src/store/store.js";

export const T0 = 1_700_000_000_000;

/** A store as the contract sees it: the port plus the group-commit counter. */
export type ContractStore = Store & { readonly stats: { readonly batches: number } };

/** Creates org `orgId` with machine `machine` and its current version `version`. */
export async function seedMachine(
  store: Store,
  orgId: string,
  machine = "counter",
  version = `ver_${orgId}`,
): Promise<void> {
  if ((await store.getOrg(orgId)) === undefined) {
    await store.createOrg({ id: orgId, name: `Org ${orgId}`, createdAt: T0 });
  }
  await store.createMachine({ orgId, name: machine, createdAt: T0 });
  await store.createMachineVersion(versionRecord(orgId, machine, version), true);
}

/** A version of `machine` whose code names its id. */
export function versionRecord(
  orgId: string,
  machine: string,
  id: string,
  extra: Partial<MachineVersionRecord> = {},
): MachineVersionRecord {
  return {
    id,
    orgId,
    machineName: machine,
    code: "export default {}",
    hash: "00".repeat(32),
    clientInfo: undefined,
    indexSelectors: undefined,
    createdAt: T0,
    ...extra,
  };
}

export function instanceKey(orgId: string, instanceName: string, machine = "counter"): InstanceKey {
  return { orgId, machineName: machine, instanceName };
}

export function createCommit(
  key: InstanceKey,
  extra: Partial<TransitionCommit> = {},
): TransitionCommit {
  return {
    kind: "create",
    instance: key,
    machineVersionId: `ver_${key.orgId}`,
    expectedSequence: 0,
    snapshot: JSON.stringify({ value: "idle", n: 0 }),
    pendingServices: [],
    transition: { event: '{"type":"xstate.init"}', state: '"idle"' },
    timersToArm: [],
    timersToCancel: [],
    timersToDetach: [],
    at: T0,
    ...extra,
  };
}

export function eventCommit(
  key: InstanceKey,
  instanceId: number,
  expectedSequence: number,
  extra: Partial<TransitionCommit> = {},
): TransitionCommit {
  const n = expectedSequence;
  return createCommit(key, {
    kind: "event",
    instanceId,
    expectedSequence,
    expectedPendingServices: [],
    snapshot: JSON.stringify({ value: "busy", n }),
    transition: { event: `{"type":"inc","n":${n}}`, state: '"busy"' },
    at: T0 + n,
    ...extra,
  });
}

/** An API key of `orgId` allowed to send events, stored as `id`. */
export async function createEventsKey(store: Store, orgId: string, id: string): Promise<void> {
  await store.createKey({
    id,
    orgId,
    name: id,
    secret: `sbsec_${id}`,
    scopes: ["events.write"],
    createdAt: T0,
  });
}

/** "ok" for a commit that settled, else the code of the error it failed with. */
export function outcomeCode(outcome: PromiseSettledResult<unknown>): string | undefined {
  return outcome.status === "fulfilled" ? "ok" : (outcome.reason as { code?: string }).code;
}

export function timer(key: string, dueAt: number, event = `{"type":"${key}"}`): TimerToArm {
  return { key, dueAt, event };
}

/** Creates an instance and returns its id. */
export async function createInstance(
  store: Store,
  key: InstanceKey,
  extra: Partial<TransitionCommit> = {},
): Promise<number> {
  const { instanceId } = await store.commitTransition(createCommit(key, extra));
  return instanceId;
}

/** Opens a store, runs `body`, and closes the store whatever happens. */
export async function using<T>(
  open: () => Promise<ContractStore>,
  body: (store: ContractStore) => Promise<T>,
): Promise<T> {
  const store = await open();
  try {
    return await body(store);
  } finally {
    await store.close();
  }
}
