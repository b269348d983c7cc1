// Machine definitions: create, list, read, delete.
import { z } from "zod";
import { BackstateError, NotFoundError } from "../../errors.js";
import type { Store } from "../../store/store.js";
import { PAGE_SIZE, decodeCursor, pageOf } from "../cursor.js";
import { checkDeletionConfirmed, dangerBody } from "../danger.js";
import { route } from "../route.js";
import { CursorQuery, MachineParams, Name } from "../schemas.js";
import { isoDate, wireVersionInfo } from "../wire.js";

const CreateMachineBody = z.object({
  slug: Name,
  indexes: z
    .array(Name)
    .max(64)
    .refine((names) => new Set(names).size === names.length, "index names must all differ")
    .optional(),
});
const DeleteMachineBody = dangerBody("hmacSha256OfMachineNameWithMachineNameKey");

type MachineName = z.infer<typeof MachineParams>;

export async function requireMachine(store: Store, orgId: string, machineName: string) {
  const machine = await store.getMachine(orgId, machineName);
  if (!machine) throw new NotFoundError(`machine ${machineName} not found`);
  return machine;
}

export const machineRoutes = [
  route<undefined, z.infer<typeof CursorQuery>>({
    method: "GET",
    path: "/machines",
    summary: "List machine definitions",
    access: { kind: "org", anyScope: ["machines.read"] },
    query: CursorQuery,
    status: 200,
    async handle({ principal, query, services }) {
      const after = decodeCursor(query.cursor, Name);
      const rows = await services.store.listMachines(principal.orgId, {
        ...(after !== undefined ? { after } : {}),
        limit: PAGE_SIZE + 1,
      });
      const { items, cursor } = pageOf(
        rows,
        (machine) => machine.name,
        (machine) => ({
          slug: machine.name,
          createdAt: isoDate(machine.createdAt),
          ...(machine.currentVersion
            ? { currentVersion: wireVersionInfo(machine.currentVersion) }
            : {}),
        }),
      );
      return { machines: items, ...(cursor ? { cursor } : {}) };
    },
  }),

  route<undefined, undefined, z.infer<typeof CreateMachineBody>>({
    method: "POST",
    path: "/machines",
    summary: "Create a machine definition (upload a version before creating instances)",
    access: { kind: "org", anyScope: ["machines.write"] },
    body: CreateMachineBody,
    status: 201,
    async handle({ principal, body, services }) {
      await services.engine.createMachine(principal.orgId, body.slug, body.indexes);
    },
  }),

  route<MachineName>({
    method: "GET",
    path: "/machines/:machineName",
    summary: "Read a machine definition and its current version",
    access: { kind: "org", anyScope: ["machines.read"] },
    params: MachineParams,
    status: 200,
    async handle({ principal, params, services }) {
      const { store } = services;
      const machine = await requireMachine(store, principal.orgId, params.machineName);
      const current =
        machine.currentVersionId === undefined
          ? undefined
          : await store.getMachineVersionInfo(
              principal.orgId,
              params.machineName,
              machine.currentVersionId,
            );
      return {
        machine: {
          createdAt: isoDate(machine.createdAt),
          indexes: machine.indexes,
          ...(current ? { currentVersion: wireVersionInfo(current) } : {}),
        },
      };
    },
  }),

  route<MachineName, undefined, z.infer<typeof DeleteMachineBody>>({
    method: "DELETE",
    path: "/machines/:machineName",
    summary: "Delete a machine with all its versions (refused while it has instances)",
    access: { kind: "org", anyScope: ["machines.admin"] },
    params: MachineParams,
    body: DeleteMachineBody,
    status: 204,
    async handle({ principal, params, body, services }) {
      const name = params.machineName;
      checkDeletionConfirmed(body, "hmacSha256OfMachineNameWithMachineNameKey", name, name);
      const result = await services.store.deleteMachine(principal.orgId, name);
      if (result === "not-found") throw new NotFoundError(`machine ${name} not found`);
      if (result === "has-instances") {
        throw new BackstateError(
          "invalid-state",
          `machine ${name} still has instances; delete them first`,
        );
      }
    },
  }),
];
