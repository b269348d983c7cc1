// A small typed client for the Backstate (State Backed) HTTP API over fetch: what the commands
// call, with errors that keep the server's status, code and parameter (see errors.ts), and the
// three-step version upload with a callback per step for the progress indicator.
import { createHmac } from "node:crypto";
import type { Connection } from "./connection.js";
import { ApiError, CliError, EXIT_UNREACHABLE, hintFor } from "./errors.js";
import type { JsonObject } from "./parse.js";

export type StateValue = string | { [region: string]: StateValue };
export type VersionInfo = { id: string; createdAt: string; clientInfo: string };
export type MachineSummary = { slug: string; createdAt: string; currentVersion?: VersionInfo };
export type Machine = { createdAt: string; indexes: string[]; currentVersion?: VersionInfo };
export type InstanceSummary = {
  slug: string;
  createdAt: string;
  status: "running" | "paused";
  machineVersion: VersionInfo;
};
/** What end users see: create, send-event and the end-user read answer it. */
export type State = {
  state: StateValue;
  publicContext: unknown;
  tags: string[];
  done: boolean;
  ts: number;
};
/** What `GET …/admin` answers: the whole context, no authorizer. */
export type AdminState = {
  state: StateValue;
  context: unknown;
  status: "running" | "paused";
  tags: string[];
  done: boolean;
  machineVersion: VersionInfo;
  desiredMachineVersion?: VersionInfo;
  createdAt: string;
};
export type KeyInfo = { id: string; name: string; scopes: string[]; createdAt: string };
export type CreatedKey = { id: string; key: string };
export type Org = { id: string; name: string; role: string; createdAt: string };
/** An identity provider as `GET /idps` lists it (its secret key never is). */
export type IdentityProvider = {
  aud?: string;
  iss?: string;
  algs: string[];
  jwksUrl?: string;
  mapping: JsonObject;
};
/** What `POST /idps` takes: `key` is the base64url of the secret's bytes. */
export type IdentityProviderUpsert = {
  aud?: string;
  iss?: string;
  algs: string[];
  key?: string;
  jwksUrl?: string;
  mapping: JsonObject;
};
export type TokenProvider = { service: string; keyId: string; mapping: JsonObject };
export type Provisional = {
  machineVersionId: string;
  codeUploadUrl: string;
  codeUploadFields: Record<string, string>;
};

type RequestOptions = { body?: unknown; actAs?: JsonObject | undefined };

/** Long enough for a request that waits for an instance to settle (the server waits up to 90 s). */
const REQUEST_TIMEOUT_MS = 120_000;
/** Pages of one list the CLI follows at most: a million items at the server's page size. */
const MAX_LIST_PAGES = 10_000;

export class ApiClient {
  constructor(readonly connection: Pick<Connection, "apiUrl" | "token" | "orgId">) {}

  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.connection.token}`,
      accept: "application/json",
    };
    if (this.connection.orgId !== undefined) {
      headers["x-statebacked-org-id"] = this.connection.orgId;
    }
    if (options.actAs !== undefined) headers["x-statebacked-act"] = asciiJson(options.actAs);
    if (options.body !== undefined) headers["content-type"] = "application/json";
    const response = await this.fetch(this.connection.apiUrl + path, {
      method,
      headers,
      ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
    });
    return (await readReply(response)) as T;
  }

  /**
   * A request whose answer is a JSON object: any other answer (a proxy's `null`, an empty body)
   * fails with a message instead of a TypeError wherever its fields are read.
   */
  async requestObject<T extends object>(
    method: string,
    path: string,
    options: RequestOptions = {},
  ): Promise<T> {
    const reply = await this.request<unknown>(method, path, options);
    if (!isObject(reply)) {
      throw new CliError(
        `the server's answer to ${method} ${path} is not a JSON object`,
        undefined,
        "is --api-url the URL of a Backstate server?",
      );
    }
    return reply as T;
  }

  /**
   * Every page of a list: follows `cursor` until the server gives none. A list that does not end
   * (a cursor given again, or more than MAX_LIST_PAGES pages) fails rather than print part of it.
   */
  async list<T>(path: string, field: string): Promise<T[]> {
    const items: T[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < MAX_LIST_PAGES; page++) {
      const query = cursor === undefined ? "" : `?cursor=${encodeURIComponent(cursor)}`;
      const reply = await this.request<unknown>("GET", path + query);
      const found = isObject(reply) ? reply[field] : undefined;
      if (!isObject(reply) || !Array.isArray(found)) {
        throw new CliError(`the server's answer to GET ${path} has no ${field} list`);
      }
      items.push(...(found as T[]));
      const next =
        typeof reply.cursor === "string" && reply.cursor !== "" ? reply.cursor : undefined;
      if (next === undefined) return items;
      if (next === cursor) {
        throw new CliError(`the server's list at GET ${path} gave the same cursor again`);
      }
      cursor = next;
    }
    throw new CliError(`the server's list at GET ${path} did not end in ${MAX_LIST_PAGES} pages`);
  }

  orgs(): Promise<Org[]> {
    return this.list<Org>("/orgs", "orgs");
  }

  listMachines(): Promise<MachineSummary[]> {
    return this.list<MachineSummary>("/machines", "machines");
  }

  async getMachine(machine: string): Promise<Machine> {
    const path = `/machines/${segment(machine)}`;
    const { machine: found } = await this.requestObject<{ machine?: unknown }>("GET", path);
    if (!isObject(found)) throw new CliError(`the server's answer to GET ${path} has no machine`);
    return found as Machine;
  }

  async createMachine(machine: string): Promise<void> {
    await this.request("POST", "/machines", { body: { slug: machine } });
  }

  /** Deletes a machine (refused while it has instances), with the confirmation the API asks. */
  async deleteMachine(machine: string): Promise<void> {
    const confirmation = createHmac("sha256", machine).update(machine).digest("base64url");
    await this.request("DELETE", `/machines/${segment(machine)}`, {
      body: {
        dangerDataWillBeDeletedForever: true,
        hmacSha256OfMachineNameWithMachineNameKey: confirmation,
      },
    });
  }

  listVersions(machine: string): Promise<VersionInfo[]> {
    return this.list<VersionInfo>(`/machines/${segment(machine)}/v`, "versions");
  }

  /**
   * The upload flow: provisional version, multipart upload of the gzipped bundle to the URL the
   * server answers (no credentials: the signed fields authorize it), then finalize.
   */
  async createVersion(
    machine: string,
    gzipped: Uint8Array,
    options: { clientInfo?: string | undefined; makeCurrent: boolean },
    onStep: (step: "provision" | "upload" | "finalize") => void = () => {},
  ): Promise<{ machineVersionId: string }> {
    onStep("provision");
    const provisional = await this.request<Provisional>(
      "POST",
      `/machines/${segment(machine)}/v?gzip`,
    );
    onStep("upload");
    const form = new FormData();
    for (const [name, value] of Object.entries(provisional.codeUploadFields)) {
      form.append(name, value);
    }
    form.set("content-type", "application/javascript");
    form.set("content-encoding", "gzip");
    form.set("file", new Blob([gzipped], { type: "application/javascript" }), `${machine}.js`);
    const uploaded = await this.fetch(provisional.codeUploadUrl, { method: "POST", body: form });
    await readReply(uploaded);
    onStep("finalize");
    return this.request<{ machineVersionId: string }>(
      "PUT",
      `/machines/${segment(machine)}/v/${segment(provisional.machineVersionId)}`,
      {
        body: {
          makeCurrent: options.makeCurrent,
          ...(options.clientInfo !== undefined ? { clientInfo: options.clientInfo } : {}),
        },
      },
    );
  }

  listInstances(machine: string): Promise<InstanceSummary[]> {
    return this.list<InstanceSummary>(`/machines/${segment(machine)}/i`, "instances");
  }

  createInstance(
    machine: string,
    body: { slug: string; context?: JsonObject; machineVersionId?: string },
    actAs: JsonObject | undefined,
  ): Promise<State> {
    return this.requestObject<State>("POST", `/machines/${segment(machine)}`, { body, actAs });
  }

  getInstance(machine: string, instance: string, actAs: JsonObject | undefined): Promise<State> {
    return this.requestObject<State>("GET", instancePath(machine, instance), { actAs });
  }

  getInstanceAdmin(machine: string, instance: string): Promise<AdminState> {
    return this.requestObject<AdminState>("GET", `${instancePath(machine, instance)}/admin`);
  }

  sendEvent(
    machine: string,
    instance: string,
    event: string | JsonObject,
    actAs: JsonObject | undefined,
  ): Promise<State> {
    return this.requestObject<State>("POST", `${instancePath(machine, instance)}/events`, {
      body: { event },
      actAs,
    });
  }

  async setInstanceStatus(
    machine: string,
    instance: string,
    status: "running" | "paused",
  ): Promise<void> {
    await this.request("PUT", `${instancePath(machine, instance)}/status`, { body: { status } });
  }

  listKeys(): Promise<KeyInfo[]> {
    return this.list<KeyInfo>("/keys", "keys");
  }

  createKey(body: { name: string; use?: string; scopes?: string[] }): Promise<CreatedKey> {
    return this.request<CreatedKey>("POST", "/keys", { body });
  }

  async deleteKey(keyId: string): Promise<void> {
    await this.request("DELETE", `/keys/${segment(keyId)}`);
  }

  listIdentityProviders(): Promise<IdentityProvider[]> {
    return this.list<IdentityProvider>("/idps", "idps");
  }

  async upsertIdentityProvider(body: IdentityProviderUpsert): Promise<void> {
    await this.request("POST", "/idps", { body });
  }

  async deleteIdentityProvider(id: { aud?: string; iss?: string }): Promise<void> {
    await this.request("DELETE", "/idps", { body: id });
  }

  listTokenProviders(): Promise<TokenProvider[]> {
    return this.list<TokenProvider>("/token-providers", "tokenProviders");
  }

  async upsertTokenProvider(body: TokenProvider): Promise<void> {
    await this.request("POST", "/token-providers", { body });
  }

  async deleteTokenProvider(service: string): Promise<void> {
    await this.request("DELETE", `/token-providers/${segment(service)}`);
  }

  private async fetch(url: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(url, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    } catch (error) {
      throw unreachable(url, error);
    }
  }
}

/**
 * JSON with every non-ASCII character as a \u escape: a header carries bytes up to 0xFF only, so
 * fetch refuses an act-as header naming, say, a user "日本" (and the command failed as if the
 * server were unreachable). The escaped text parses to the same value on the server.
 */
function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[\u0080-\uffff]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

function segment(value: string): string {
  return encodeURIComponent(value);
}

function instancePath(machine: string, instance: string): string {
  return `/machines/${segment(machine)}/i/${segment(instance)}`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The JSON body of a success (undefined when empty), or the server's error as an ApiError. */
async function readReply(response: Response): Promise<unknown> {
  let text: string;
  try {
    text = await response.text();
  } catch (error) {
    // The connection broke (or timed out) after the headers: as unreachable as before them.
    throw unreachable(response.url, error);
  }
  let body: unknown;
  try {
    body = text === "" ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (response.ok) {
    if (text !== "" && body === undefined) {
      throw new CliError(
        `the server answered ${response.status} with a body that is not JSON`,
        undefined,
        "is --api-url the URL of a Backstate server?",
      );
    }
    return body;
  }
  const fields = (typeof body === "object" && body !== null ? body : {}) as Record<string, unknown>;
  const code = typeof fields.code === "string" ? fields.code : `http-${response.status}`;
  const message =
    typeof fields.error === "string" && fields.error !== ""
      ? fields.error
      : `the server answered ${response.status} ${response.statusText}`.trim();
  const parameter = typeof fields.parameter === "string" ? fields.parameter : undefined;
  throw new ApiError(
    response.status,
    code,
    message,
    parameter,
    hintFor(code, response.status, message),
  );
}

function unreachable(url: string, error: unknown): CliError {
  const origin = safeOrigin(url);
  const cause = (error as { cause?: { code?: string; message?: string } } | undefined)?.cause;
  const name = (error as { name?: string } | undefined)?.name;
  const why =
    name === "TimeoutError"
      ? `no answer in ${REQUEST_TIMEOUT_MS / 1000} s`
      : (cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : String(error)));
  return new CliError(
    `cannot reach the server at ${origin} (${why})`,
    EXIT_UNREACHABLE,
    "is it running? Start one with `backstate serve`, or check --api-url (and the login's URL)",
  );
}

function safeOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}
