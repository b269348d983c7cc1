// The machines of an org and their versions, as the engine needs them: creating them (a
// version only once a sandbox has loaded its bundle) and choosing the version a new instance runs.
import { createHash } from "node:crypto";
import { BackstateError, NotFoundError } from "../errors.js";
import type { MachineRuntime } from "../runtime/machine-runtime.js";
import type { InstanceKey, MakeCurrent, Store } from "../store/store.js";
import type { Clock } from "./clock.js";
import type { IdGenerator } from "./ids.js";
import { checkName } from "./validate.js";

export type NewMachineVersion = {
  orgId: string;
  machineName: string;
  /** The bundle: one ES module, as uploaded (already gunzipped). */
  code: string;
  clientInfo?: string;
  indexSelectors?: Record<string, string>;
  makeCurrent: MakeCurrent;
  /** The id to give the version (the upload flow names it in advance); default a fresh one. */
  versionId?: string;
};

export class MachineCatalog {
  constructor(
    private readonly deps: {
      store: Store;
      runtime: MachineRuntime;
      clock: Clock;
      ids: IdGenerator;
    },
  ) {}

  async createMachine(orgId: string, machineName: string, indexes: string[] = []): Promise<void> {
    checkName("machineName", machineName);
    for (const index of indexes) checkName("indexes", index);
    await this.deps.store.createMachine({
      orgId,
      name: machineName,
      indexes,
      createdAt: this.deps.clock.now(),
    });
  }

  /** Stores a bundle as a new version after checking, in a sandbox, that it loads and exports what it must. */
  async createMachineVersion(input: NewMachineVersion): Promise<string> {
    const machine = await this.deps.store.getMachine(
      input.orgId,
      checkName("machineName", input.machineName),
    );
    if (!machine) throw new NotFoundError(`machine ${input.machineName} not found`);
    const id = input.versionId ?? this.deps.ids("ver");
    const version = { orgId: input.orgId, machineName: input.machineName, versionId: id };
    const inspection = await this.deps.runtime.inspectCode(version, input.code);
    if (!inspection.hasAllowRead || !inspection.hasAllowWrite) {
      throw new BackstateError(
        "invalid-bundle",
        "the bundle must export allowRead and allowWrite functions",
      );
    }
    await this.deps.store.createMachineVersion(
      {
        id,
        orgId: input.orgId,
        machineName: input.machineName,
        code: input.code,
        hash: createHash("sha256").update(input.code).digest("hex"),
        clientInfo: input.clientInfo,
        indexSelectors: input.indexSelectors,
        createdAt: this.deps.clock.now(),
      },
      input.makeCurrent,
    );
    return id;
  }

  /** The version a new instance runs: the one asked for, else the machine's current one. */
  async resolveVersion(key: InstanceKey, requested: string | undefined): Promise<string> {
    const machine = await this.deps.store.getMachine(key.orgId, key.machineName);
    if (!machine) throw new NotFoundError(`machine ${key.machineName} not found`);
    if (requested !== undefined) {
      const version = await this.deps.store.getMachineVersion(
        key.orgId,
        key.machineName,
        requested,
      );
      if (!version) throw new NotFoundError(`machine version ${requested} not found`);
      return version.id;
    }
    // 404, as for a missing machine or version (api-contract §4.4): nothing to create it from.
    // (A 409 would send the client's getOrCreate after an instance that a race made.)
    if (!machine.currentVersionId) {
      throw new NotFoundError(`machine ${key.machineName} has no current version yet`);
    }
    return machine.currentVersionId;
  }
}
