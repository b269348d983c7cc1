// GET /healthz: 200 while this node serves and its database answers; 503 while it shuts down
// (shutting-down), or cannot reach its database or has long not heard the other nodes' change
// notices (store-error), so that a load balancer sends the requests to the other nodes. Not part of State Backed's API; it says nothing else.
import { route } from "../route.js";

export const healthRoutes = [
  route({
    method: "GET",
    path: "/healthz",
    summary:
      "Whether this node takes requests: 200 {status: 'ok'}, else 503 with the reason's code",
    access: { kind: "public" },
    // A balancer must see this node's answer of now, never one a cache kept.
    noStore: true,
    status: 200,
    async handle({ services }) {
      await services.health.check();
      return { status: "ok" };
    },
  }),
];
