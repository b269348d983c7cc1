// Endpoints of the State Backed API whose feature arrives with a later issue. They answer 501
// `not-implemented` (whoever calls), so a client learns at once that the server lacks them.
import { BackstateError } from "../../errors.js";
import { route, type Method } from "../route.js";

const LATER: Array<[Method, string, string]> = [
  ["PUT", "/machines/:machineName/i/:instanceName/v", "instance version upgrades (migrations)"],
  ["POST", "/machines/:machineName/migrations", "migrations"],
  ["PUT", "/machines/:machineName/migrations/:signedMigrationId", "migrations"],
  ["GET", "/machines/:machineName/indexes/:index/query", "index queries"],
  ["GET", "/logs", "logs from machine code"],
  ["GET", "/billing", "billing (a self-hosted server has none)"],
  ["POST", "/org-members", "org invitations"],
  // Accepting one: smply PUTs the invitation's code at the API's root. Last in the route list, so
  // it takes only the PUTs of one segment that no other route matched.
  ["PUT", "/:invitationCode", "org invitations"],
];

export const notImplementedRoutes = LATER.map(([method, path, feature]) =>
  route({
    method,
    path,
    summary: `Not implemented yet: ${feature}`,
    access: { kind: "public" },
    status: 204,
    handle() {
      return Promise.reject(
        new BackstateError("not-implemented", `${feature}: not implemented by this server yet`),
      );
    },
  }),
);
