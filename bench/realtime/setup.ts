// Sets Backstate up over its HTTP API the way a user would, for every benchmark: deploys the
// toggle machine, creates a production key (it holds state.read), signs user tokens with it and
// creates the instances.
import { signToken } from "@backstate/token";
import { runLoad } from "../engine/load.js";
import { bundleToggle } from "../engine/toggle-machine.js";
import type { HttpClient } from "../http/client.js";
import type { BackstateInfo } from "./backstate-server.js";

/** Deploys the toggle machine and answers `users` user tokens (sub bench-0, bench-1, …). */
export async function deployToggle(
  info: BackstateInfo,
  client: HttpClient,
  users: number,
): Promise<string[]> {
  const admin = { authorization: `Bearer ${info.adminToken}`, "x-statebacked-org-id": info.orgId };
  await client.json(201, "POST", "/machines", { slug: "toggle" }, admin);
  const version = await client.json<{
    machineVersionId: string;
    codeUploadUrl: string;
    codeUploadFields: Record<string, string>;
  }>(200, "POST", "/machines/toggle/v", undefined, admin);
  const form = new FormData();
  for (const [field, value] of Object.entries(version.codeUploadFields)) form.set(field, value);
  form.set("file", new Blob([await bundleToggle()], { type: "text/javascript" }), "toggle.js");
  const uploaded = await fetch(version.codeUploadUrl, { method: "POST", body: form });
  if (uploaded.status !== 204) {
    throw new Error(`code upload: ${uploaded.status} ${await uploaded.text()}`);
  }
  await client.json(
    200,
    "PUT",
    `/machines/toggle/v/${version.machineVersionId}`,
    { makeCurrent: true },
    admin,
  );
  const key = await client.json<{ id: string; key: string }>(
    200,
    "POST",
    "/keys",
    { name: "bench", use: "production" },
    admin,
  );
  const tokens: string[] = [];
  for (let i = 0; i < users; i++) {
    tokens.push(
      await signToken(
        { stateBackedKeyId: key.id, stateBackedSecretKey: key.key },
        { sub: `bench-${i}` },
        { expires: { in: "1h" } },
      ),
    );
  }
  return tokens;
}

/** Creates the named instances of the toggle machine, `concurrency` at a time. */
export async function createInstances(
  client: HttpClient,
  token: string,
  names: string[],
  concurrency: number,
): Promise<void> {
  const user = { authorization: `Bearer ${token}` };
  await runLoad(names.length, concurrency, (i) =>
    client.json(200, "POST", "/machines/toggle", { slug: names[i] }, user),
  );
}
