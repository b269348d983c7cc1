// Everything an admin can read about an org through the API, in one comparable value: keys,
// machines with their versions, instances with their administrative state and history, and the
// admin's orgs. Tests take one before and after hostile requests and compare them.
import type { ApiServer } from "../support/api-server.js";

export type OrgSnapshot = {
  orgs: unknown[];
  keys: unknown[];
  machines: Record<
    string,
    {
      listed: unknown;
      machine: unknown;
      versions: unknown[];
      instances: Record<string, { listed: unknown; admin: unknown; transitions: unknown[] }>;
    }
  >;
};

/** Every page of a listing (fails loudly on anything but 200). */
export async function listAll(
  api: ApiServer,
  path: string,
  field: string,
): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let cursor: string | undefined;
  do {
    const query = cursor === undefined ? "" : `?cursor=${encodeURIComponent(cursor)}`;
    const page = await read(api, `${path}${query}`);
    items.push(...(page[field] as Record<string, unknown>[]));
    cursor = page.cursor as string | undefined;
  } while (cursor !== undefined);
  return items;
}

async function read(api: ApiServer, path: string): Promise<Record<string, unknown>> {
  const response: { status: number; body: unknown } = await api.admin("GET", path);
  if (response.status !== 200) {
    throw new Error(
      `snapshot: GET ${path} answered ${response.status} ${JSON.stringify(response.body)}`,
    );
  }
  return response.body as Record<string, unknown>;
}

/** The org `api.admin` calls act in (the admin session, naming the bootstrap org). */
export async function snapshotOrg(api: ApiServer): Promise<OrgSnapshot> {
  const snapshot: OrgSnapshot = {
    orgs: await listAll(api, "/orgs", "orgs"),
    keys: await listAll(api, "/keys", "keys"),
    machines: {},
  };
  for (const listed of await listAll(api, "/machines", "machines")) {
    const name = (listed as { slug: string }).slug;
    const base = `/machines/${name}`;
    const instances: OrgSnapshot["machines"][string]["instances"] = {};
    for (const instance of await listAll(api, `${base}/i`, "instances")) {
      const slug = (instance as { slug: string }).slug;
      instances[slug] = {
        listed: instance,
        admin: await read(api, `${base}/i/${slug}/admin`),
        transitions: await listAll(api, `${base}/i/${slug}/events`, "transitions"),
      };
    }
    snapshot.machines[name] = {
      listed,
      machine: await read(api, base),
      versions: await listAll(api, `${base}/v`, "versions"),
      instances,
    };
  }
  return snapshot;
}
