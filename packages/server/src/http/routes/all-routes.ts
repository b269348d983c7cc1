// Every route of the API, in one list: the router, /openapi.json and the tests read it.
import type { Route } from "../route.js";
import { codeUploadRoutes } from "./code-upload.js";
import { healthRoutes } from "./health.js";
import { identityProviderRoutes } from "./identity-providers.js";
import { instanceRoutes } from "./instances.js";
import { keyRoutes } from "./keys.js";
import { machineRoutes } from "./machines.js";
import { notImplementedRoutes } from "./not-implemented.js";
import { orgRoutes } from "./orgs.js";
import { realtimeRoutes } from "./realtime.js";
import { tokenProviderRoutes } from "./token-providers.js";
import { tokenRoutes } from "./tokens.js";
import { versionRoutes } from "./versions.js";

export const apiRoutes: readonly Route[] = [
  ...orgRoutes,
  ...keyRoutes,
  ...machineRoutes,
  ...versionRoutes,
  ...codeUploadRoutes,
  ...instanceRoutes,
  ...realtimeRoutes,
  ...identityProviderRoutes,
  ...tokenProviderRoutes,
  ...tokenRoutes,
  ...notImplementedRoutes,
  ...healthRoutes,
];
