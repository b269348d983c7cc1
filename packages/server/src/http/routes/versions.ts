// Machine versions: list them, and the three-step creation the official client performs
// (provisional create → upload to the returned URL → finalize; see code-upload.ts for the middle).
import { z } from "zod";
import { AlreadyExistsError, InvalidParameterError } from "../../errors.js";
import type { MachineRecord, Store } from "../../store/store.js";
import { PAGE_SIZE, decodeCursor, pageOf } from "../cursor.js";
import { route } from "../route.js";
import { CursorQuery, MachineParams, Name, StoredText } from "../schemas.js";
import { wireVersionInfo } from "../wire.js";
import { requireMachine } from "./machines.js";

export const CODE_UPLOAD_PATH = "/code-uploads";

const VersionPosition = z.object({ createdAt: z.number().int(), id: StoredText.max(128) });

const FinalizeParams = MachineParams.extend({
  signedMachineVersionId: z.string().min(1).max(512),
});
const FinalizeBody = z.object({
  clientInfo: StoredText.max(1024).optional(),
  makeCurrent: z.boolean().optional(),
  indexSelectors: z.record(Name, z.string().max(1024)).optional(),
});

export const versionRoutes = [
  route<z.infer<typeof MachineParams>, z.infer<typeof CursorQuery>>({
    method: "GET",
    path: "/machines/:machineName/v",
    summary: "List a machine's versions, oldest first",
    access: { kind: "org", anyScope: ["machine-versions.read"] },
    params: MachineParams,
    query: CursorQuery,
    status: 200,
    async handle({ principal, params, query, services }) {
      const { store } = services;
      await requireMachine(store, principal.orgId, params.machineName);
      const after = decodeCursor(query.cursor, VersionPosition);
      const rows = await store.listMachineVersions(principal.orgId, params.machineName, {
        ...(after !== undefined ? { after } : {}),
        limit: PAGE_SIZE + 1,
      });
      const { items, cursor } = pageOf(
        rows,
        (version) => ({ createdAt: version.createdAt, id: version.id }),
        wireVersionInfo,
      );
      return { versions: items, ...(cursor ? { cursor } : {}) };
    },
  }),

  route<z.infer<typeof MachineParams>, { gzip?: string | undefined }>({
    method: "POST",
    path: "/machines/:machineName/v",
    summary: "Provisionally create a version: answers a signed id and where to upload the code",
    access: { kind: "org", anyScope: ["machine-versions.write"] },
    params: MachineParams,
    // The client appends a bare `?gzip`; the upload detects gzip itself, so it is only accepted.
    query: z.object({ gzip: z.string().max(16).optional() }),
    status: 200,
    async handle({ principal, params, services, request }) {
      const machine = await requireMachine(services.store, principal.orgId, params.machineName);
      const { signedId, fields } = services.uploads.signVersionId(
        { orgId: principal.orgId, machineName: params.machineName, versionId: services.ids("ver") },
        machine.createdAt,
      );
      return {
        machineVersionId: signedId,
        codeUploadUrl: `${services.publicUrl(request)}${CODE_UPLOAD_PATH}`,
        codeUploadFields: fields,
      };
    },
  }),

  route<z.infer<typeof FinalizeParams>, undefined, z.infer<typeof FinalizeBody>>({
    method: "PUT",
    path: "/machines/:machineName/v/:signedMachineVersionId",
    summary: "Finalize a version from its uploaded code; `makeCurrent` makes new instances use it",
    access: { kind: "org", anyScope: ["machine-versions.write"] },
    params: FinalizeParams,
    body: FinalizeBody,
    status: 200,
    async handle({ principal, params, body, services }) {
      const { store, engine, uploads } = services;
      const { orgId } = principal;
      const { machineName } = params;
      // The machine first: a machine unknown in the caller's org is a 404 (as on every route),
      // whatever the signed id says.
      const machine = await requireMachine(store, orgId, machineName);
      const versionId = uploads.verifySignedVersionId(
        params.signedMachineVersionId,
        orgId,
        machineName,
        machine.createdAt,
      );
      const unknownIndex = Object.keys(body.indexSelectors ?? {}).find(
        (index) => !machine.indexes.includes(index),
      );
      if (unknownIndex !== undefined) {
        throw new InvalidParameterError(
          "indexSelectors",
          `machine ${machineName} declares no index ${unknownIndex}`,
        );
      }
      if (await store.getMachineVersionInfo(orgId, machineName, versionId)) {
        throw new AlreadyExistsError(`machine version ${versionId} is already finalized`);
      }
      const upload = await store.getCodeUpload(orgId, machineName, versionId);
      if (!upload) {
        throw new InvalidParameterError(
          "machineVersionId",
          "no code was uploaded for this version: POST it to the upload URL first",
        );
      }
      const indexSelectors = body.indexSelectors ?? (await currentSelectors(store, machine));
      await engine.createMachineVersion({
        orgId,
        machineName,
        code: upload.code,
        ...(indexSelectors !== undefined ? { indexSelectors } : {}),
        // A machine's first version becomes current unless told otherwise: without one, the
        // machine can run no instance at all. "First" is judged when the version is stored (the
        // machine read above is from before the bundle check, which takes a while).
        makeCurrent: body.makeCurrent ?? "if-none",
        versionId,
        ...(body.clientInfo !== undefined ? { clientInfo: body.clientInfo } : {}),
      });
      return { machineVersionId: versionId };
    },
  }),
];

/**
 * The selectors a version finalized without any takes on: the current version's, as State
 * Backed's CLI documents ("inherited from the current version"). None when there is none yet.
 */
async function currentSelectors(
  store: Store,
  machine: MachineRecord,
): Promise<Record<string, string> | undefined> {
  if (machine.currentVersionId === undefined) return undefined;
  const current = await store.getMachineVersion(
    machine.orgId,
    machine.name,
    machine.currentVersionId,
  );
  return current?.indexSelectors;
}
