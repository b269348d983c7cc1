// A real Backstate server on a free loopback port for black-box API tests: a fresh store (a data
// dir, or a PostgreSQL schema when the test file runs on PostgreSQL: see store-target.ts), the
// bootstrap admin with a session token, and helpers to deploy fixtures and mint key tokens.
import { signToken } from "@backstate/token";
import { ensureBootstrapAdmin, mintAdminSession } from "../../src/auth/admin-sessions.js";
import type { Scope } from "../../src/auth/scopes.js";
import { systemClock } from "../../src/engine/clock.js";
import { randomIds } from "../../src/engine/ids.js";
import { startServer, type RunningServer, type ServerOptions } from "../../src/http/server.js";
import { bundleFixture, type BundleStyle } from "./bundles.js";
import { freshStore, type FreshStore } from "./store-target.js";

export type ApiKey = { id: string; key: string };

// Tests read response bodies field by field; the assertions, not the types, check their shape.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ApiResponse = { status: number; body: any };

export type ApiServer = {
  url: string;
  server: RunningServer;
  orgId: string;
  userId: string;
  adminToken: string;
  /** Calls the API with the admin session (and JSON), answering status and parsed body. */
  admin(method: string, path: string, body?: unknown): Promise<ApiResponse>;
  /**
   * The first two steps of a version's upload flow, over HTTP: provisions a version of the
   * machine and uploads `code` to the URL given; answers its signed id and the upload's response.
   */
  uploadVersion(
    machineName: string,
    code: string | Uint8Array,
  ): Promise<{ signedId: string; upload: Response }>;
  /** Creates a machine from a fixture bundle and makes that its current version (through HTTP). */
  deploy(fixture: string, style: BundleStyle, machineName: string): Promise<string>;
  createKey(scopes: readonly Scope[], name?: string): Promise<ApiKey>;
  /** A key token with `act` claims, expiring in an hour unless told otherwise. */
  tokenFor(key: ApiKey, act: Record<string, unknown>, expiresAt?: number): Promise<string>;
  /**
   * POST /tokens, form-encoded as the official client sends it: exchanges `subjectToken` for a
   * token of this org's `service` (more form fields in `extra`); answers status and parsed body.
   */
  exchangeToken(
    service: string,
    subjectToken: string,
    extra?: Record<string, string>,
  ): Promise<ApiResponse>;
  /** A second org, with its own admin-made key holding every scope given. */
  otherOrg(scopes: readonly Scope[]): Promise<{ orgId: string; key: ApiKey }>;
  /** The store it runs on. */
  store: FreshStore;
  dispose(): Promise<void>;
};

export async function startApiServer(options: Partial<ServerOptions> = {}): Promise<ApiServer> {
  const store = freshStore("api");
  return startOn(store, options, () => store.dispose());
}

/**
 * Another node of `first`'s cluster (PostgreSQL only): a server of its own on the same schema,
 * with the same org and admin. Disposing it leaves the store to `first`.
 */
export function startAnotherNode(
  first: ApiServer,
  options: Partial<ServerOptions> = {},
): Promise<ApiServer> {
  if (first.store.options.databaseUrl === undefined) {
    throw new TypeError("only servers on PostgreSQL share their store");
  }
  return startOn(first.store, options, () => Promise.resolve());
}

async function startOn(
  store: FreshStore,
  options: Partial<ServerOptions>,
  disposeStore: () => Promise<void>,
): Promise<ApiServer> {
  let server: RunningServer;
  try {
    server = await startServer({ sandboxes: { size: 2 }, ...options, ...store.options });
  } catch (error) {
    await disposeStore();
    throw error;
  }
  const { orgId, userId } = await ensureBootstrapAdmin(
    server.backstate.store,
    randomIds,
    systemClock,
  );
  const { token: adminToken } = await mintAdminSession(
    server.backstate.store,
    randomIds,
    systemClock,
    userId,
  );
  const url = server.url;

  const call = async (
    token: string,
    method: string,
    path: string,
    body?: unknown,
    org?: string,
  ) => {
    const response = await fetch(url + path, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        "content-type": "application/json",
        ...(org ? { "x-statebacked-org-id": org } : {}),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as unknown) : undefined };
  };
  const admin = (method: string, path: string, body?: unknown) =>
    call(adminToken, method, path, body, orgId) as Promise<ApiResponse>;

  const api: ApiServer = {
    url,
    server,
    store,
    orgId,
    userId,
    adminToken,
    admin,
    async uploadVersion(machineName, code) {
      const provisional = await admin("POST", `/machines/${machineName}/v`);
      if (provisional.status !== 200) throw new Error(JSON.stringify(provisional));
      const { machineVersionId, codeUploadUrl, codeUploadFields } = provisional.body as {
        machineVersionId: string;
        codeUploadUrl: string;
        codeUploadFields: Record<string, string>;
      };
      const form = new FormData();
      for (const [name, value] of Object.entries(codeUploadFields)) form.set(name, value);
      form.set("file", new Blob([code], { type: "application/javascript" }), `${machineName}.js`);
      const upload = await fetch(codeUploadUrl, { method: "POST", body: form });
      return { signedId: machineVersionId, upload };
    },
    async deploy(fixture, style, machineName) {
      const code = await bundleFixture(fixture, style);
      const created = await admin("POST", "/machines", { slug: machineName });
      if (created.status !== 201 && created.status !== 409)
        throw new Error(JSON.stringify(created));
      const { signedId, upload } = await api.uploadVersion(machineName, code);
      if (!upload.ok) throw new Error(`upload failed: ${upload.status} ${await upload.text()}`);
      const finalized = await admin("PUT", `/machines/${machineName}/v/${signedId}`, {
        clientInfo: style,
        makeCurrent: true,
      });
      if (finalized.status !== 200) throw new Error(JSON.stringify(finalized));
      return (finalized.body as { machineVersionId: string }).machineVersionId;
    },
    async createKey(scopes, name = "test") {
      const created = await admin("POST", "/keys", { name, scopes });
      if (created.status !== 200) throw new Error(JSON.stringify(created));
      return created.body as ApiKey;
    },
    tokenFor(key, act, expiresAt) {
      return signToken({ stateBackedKeyId: key.id, stateBackedSecretKey: key.key }, act, {
        expires: expiresAt === undefined ? { in: "1h" } : { at: expiresAt },
      });
    },
    async exchangeToken(service, subjectToken, extra = {}) {
      const response = await fetch(`${url}/tokens`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({
          grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
          audience: `https://tokens.statebacked.dev/${orgId}/${service}`,
          subject_token: subjectToken,
          ...extra,
        }).toString(),
      });
      const text = await response.text();
      return { status: response.status, body: text ? (JSON.parse(text) as unknown) : undefined };
    },
    async otherOrg(scopes) {
      const created = await call(adminToken, "POST", "/orgs", { name: "other" });
      const other = (created.body as { id: string }).id;
      const key = await call(adminToken, "POST", "/keys", { name: "other", scopes }, other);
      if (key.status !== 200) throw new Error(JSON.stringify(key));
      return { orgId: other, key: key.body as ApiKey };
    },
    async dispose() {
      await server.close();
      await disposeStore();
    },
  };
  return api;
}
