// `/rt` is a WebSocket endpoint (see realtime/); this route only answers a plain GET of it, and
// documents it in /openapi.json.
import { BackstateError } from "../../errors.js";
import { route } from "../route.js";

export const realtimeRoutes = [
  route({
    method: "GET",
    path: "/rt",
    summary:
      "Realtime instance updates over WebSocket: ?token=<JWT>[&x-statebacked-org-id=<org>], JSON messages",
    access: { kind: "public" },
    status: 204,
    handle() {
      return Promise.reject(
        new BackstateError("upgrade-required", "/rt is a WebSocket endpoint: connect with ws://"),
      );
    },
  }),
];
