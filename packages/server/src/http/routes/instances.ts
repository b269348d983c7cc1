// Machine instances: create, read (through allowRead), send events (through allowWrite), list,
// and the administrative read, history, status and delete.
import { createHmac } from "node:crypto";
import { z } from "zod";
import { requiredKeyOf } from "../../auth/principal.js";
import { NotFoundError } from "../../errors.js";
import { PAGE_SIZE, decodeCursor, pageOf } from "../cursor.js";
import { checkDeletionConfirmed, dangerBody } from "../danger.js";
import { route } from "../route.js";
import {
  CursorQuery,
  EventSchema,
  InstanceParams,
  JsonObjectSchema,
  MachineParams,
  Name,
  StateSchema,
} from "../schemas.js";
import { isoDate, wireState, wireVersionInfo } from "../wire.js";
import { requireMachine } from "./machines.js";

type Machine = z.infer<typeof MachineParams>;
type Instance = z.infer<typeof InstanceParams>;

const CreateInstanceBody = z.object({
  slug: Name,
  context: JsonObjectSchema.optional(),
  machineVersionId: z
    .string()
    .regex(/^ver_[A-Za-z0-9_-]{1,64}$/)
    .optional(),
});
const DeleteInstanceBody = dangerBody("hmacSha256OfMachineInstanceNameWithMachineNameKey");
const SendEventBody = z.object({ event: EventSchema });
const StatusBody = z.object({ status: z.enum(["running", "paused"]) });

/**
 * What one page of an instance's history may hold, in bytes of stored events and states (plus the
 * row that crosses it): a machine may store events of 4 MiB, and a hundred of them in one answer
 * would take gigabytes to parse and send.
 */
export const HISTORY_PAGE_BYTES = 8 * 1024 * 1024;

const historyBytes = (rows: ReadonlyArray<{ event: string; state: string }>): number =>
  rows.reduce((sum, row) => sum + Buffer.byteLength(row.event) + Buffer.byteLength(row.state), 0);

export const instanceRoutes = [
  route<Machine, undefined, z.infer<typeof CreateInstanceBody>>({
    method: "POST",
    path: "/machines/:machineName",
    summary: "Create an instance: runs allowWrite (initialization), then waits for it to settle",
    access: { kind: "org", anyScope: ["instances.write"] },
    params: MachineParams,
    body: CreateInstanceBody,
    status: 200,
    response: StateSchema,
    async handle({ principal, params, body, services }) {
      const state = await services.engine.createInstance({
        orgId: principal.orgId,
        machineName: params.machineName,
        instanceName: body.slug,
        context: body.context,
        authContext: principal.authContext,
        ...(body.machineVersionId !== undefined ? { machineVersionId: body.machineVersionId } : {}),
      });
      return wireState(state);
    },
  }),

  route<Machine, z.infer<typeof CursorQuery>>({
    method: "GET",
    path: "/machines/:machineName/i",
    summary: "List a machine's instances",
    access: { kind: "org", anyScope: ["instances.read"] },
    params: MachineParams,
    query: CursorQuery,
    status: 200,
    async handle({ principal, params, query, services }) {
      await requireMachine(services.store, principal.orgId, params.machineName);
      const after = decodeCursor(query.cursor, Name);
      const rows = await services.store.listInstances(principal.orgId, params.machineName, {
        ...(after !== undefined ? { after } : {}),
        limit: PAGE_SIZE + 1,
      });
      const { items, cursor } = pageOf(
        rows,
        (instance) => instance.name,
        (instance) => ({
          slug: instance.name,
          createdAt: isoDate(instance.createdAt),
          status: instance.status,
          machineVersion: wireVersionInfo(instance.machineVersion),
        }),
      );
      return { instances: items, ...(cursor ? { cursor } : {}) };
    },
  }),

  route<Instance>({
    method: "GET",
    path: "/machines/:machineName/i/:instanceName",
    summary: "Read an instance's state through the machine's allowRead (404 when missing)",
    access: { kind: "org", anyScope: ["state.read"] },
    params: InstanceParams,
    status: 200,
    response: StateSchema,
    async handle({ principal, params, services }) {
      const state = await services.engine.readInstance({
        orgId: principal.orgId,
        ...params,
        authContext: principal.authContext,
      });
      return wireState(state);
    },
  }),

  route<Instance, undefined, z.infer<typeof DeleteInstanceBody>>({
    method: "DELETE",
    path: "/machines/:machineName/i/:instanceName",
    summary: "Delete an instance with its history and pending delayed events",
    access: { kind: "org", anyScope: ["instances.admin"] },
    params: InstanceParams,
    body: DeleteInstanceBody,
    status: 204,
    async handle({ principal, params, body, services }) {
      const field = "hmacSha256OfMachineInstanceNameWithMachineNameKey";
      checkDeletionConfirmed(body, field, params.machineName, params.instanceName);
      await services.engine.deleteInstance({ orgId: principal.orgId, ...params });
    },
  }),

  route<Instance>({
    method: "GET",
    path: "/machines/:machineName/i/:instanceName/admin",
    summary: "Read an instance's whole state and context, without its authorizer",
    access: { kind: "org", anyScope: ["instances.admin"] },
    params: InstanceParams,
    status: 200,
    async handle({ principal, params, services }) {
      const { orgId } = principal;
      const found = await services.engine.inspectInstance({ orgId, ...params });
      const version = await services.store.getMachineVersionInfo(
        orgId,
        params.machineName,
        found.machineVersionId,
      );
      if (!version) throw new NotFoundError(`instance ${params.instanceName} not found`);
      return {
        state: found.state,
        context: found.context,
        status: found.status,
        tags: found.tags,
        done: found.done,
        machineVersion: wireVersionInfo(version),
        createdAt: isoDate(found.createdAt),
      };
    },
  }),

  route<Instance, z.infer<typeof CursorQuery>>({
    method: "GET",
    path: "/machines/:machineName/i/:instanceName/events",
    summary: "List an instance's transitions, newest first",
    access: { kind: "org", anyScope: ["instances.admin"] },
    params: InstanceParams,
    query: CursorQuery,
    status: 200,
    async handle({ principal, params, query, services }) {
      const key = { orgId: principal.orgId, ...params };
      if (!(await services.store.loadInstance(key))) {
        throw new NotFoundError(`instance ${params.instanceName} not found`);
      }
      const after = decodeCursor(query.cursor, z.number().int().nonnegative());
      const rows = await services.store.listTransitions(key, {
        ...(after !== undefined ? { afterSequence: after } : {}),
        limit: PAGE_SIZE + 1,
        newestFirst: true,
        maxBytes: HISTORY_PAGE_BYTES,
      });
      const { items, cursor } = pageOf(
        rows,
        (row) => row.sequence,
        (row) => ({
          createdAt: isoDate(row.createdAt),
          state: JSON.parse(row.state) as unknown,
          event: JSON.parse(row.event) as unknown,
        }),
        historyBytes(rows) >= HISTORY_PAGE_BYTES,
      );
      return { transitions: items, ...(cursor ? { cursor } : {}) };
    },
  }),

  route<Instance, undefined, z.infer<typeof SendEventBody>>({
    method: "POST",
    path: "/machines/:machineName/i/:instanceName/events",
    summary: "Send an event: runs allowWrite, then waits for the instance to settle",
    // The spec names instances.write; the docs describe events.write as "send events".
    access: { kind: "org", anyScope: ["instances.write", "events.write"] },
    params: InstanceParams,
    body: SendEventBody,
    status: 200,
    response: StateSchema,
    // The hot path: the event's commit checks the key instead of a store read per request.
    keyCheckedAtCommit: true,
    async handle({ caller, principal, params, body, services }) {
      const state = await services.engine.sendEvent({
        orgId: principal.orgId,
        ...params,
        event: body.event,
        authContext: principal.authContext,
        requiresKeyId: requiredKeyOf(caller),
      });
      return wireState(state);
    },
  }),

  route<Instance, undefined, z.infer<typeof StatusBody>>({
    method: "PUT",
    path: "/machines/:machineName/i/:instanceName/status",
    summary: "Pause or resume an instance (a paused instance refuses every event with 409)",
    access: { kind: "org", anyScope: ["instances.admin"] },
    params: InstanceParams,
    body: StatusBody,
    status: 204,
    async handle({ principal, params, body, services }) {
      await services.engine.setInstanceStatus({
        orgId: principal.orgId,
        ...params,
        status: body.status,
      });
    },
  }),
];

// The HMAC the official client sends to confirm deleting an instance (exported for tests).
export const instanceDeletionHmac = (machineName: string, instanceName: string): string =>
  createHmac("sha256", machineName).update(instanceName).digest("base64url");
