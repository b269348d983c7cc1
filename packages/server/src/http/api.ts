// The HTTP API as a node:http request listener: CORS on every response, the routes, the one
// error renderer. Every answer is JSON (or empty), written in one go.
import type { IncomingMessage, ServerResponse } from "node:http";
import { ACT_HEADER, ORG_HEADER } from "../auth/resolve-principal.js";
import { NotFoundError } from "../errors.js";
import { readApiRequest } from "./api-request.js";
import { errorResponse } from "./error-response.js";
import { handleRoute } from "./handle-route.js";
import { openApiDocument } from "./openapi.js";
import type { ApiServices } from "./route.js";
import { Router } from "./router.js";
import { apiRoutes } from "./routes/all-routes.js";

const API_VERSION = "0.1.0";

export type RequestListener = (incoming: IncomingMessage, outgoing: ServerResponse) => void;

type HeaderMap = Readonly<Record<string, string>>;

/** Any origin may call: every call carries its own bearer token, never a cookie. */
const CORS_HEADERS: HeaderMap = { "access-control-allow-origin": "*" };
/** Answers holding credentials (RFC 6749 §5.1): no cache may keep them. */
const NO_STORE_HEADERS: HeaderMap = {
  ...CORS_HEADERS,
  "cache-control": "no-store",
  pragma: "no-cache",
};
const PREFLIGHT_HEADERS = {
  ...CORS_HEADERS,
  "access-control-allow-methods": "GET,POST,PUT,DELETE,OPTIONS",
  "access-control-allow-headers": ["authorization", "content-type", ORG_HEADER, ACT_HEADER].join(
    ",",
  ),
  "access-control-max-age": "600",
};

export function createApi(services: ApiServices): RequestListener {
  const router = new Router(apiRoutes);
  const document = JSON.stringify(openApiDocument(apiRoutes, API_VERSION));

  /** What to answer: the status, the JSON text (undefined: no body), and the route's headers. */
  type Answer = { status: number; json: string | undefined; headers: HeaderMap };
  const answer = async (incoming: IncomingMessage): Promise<Answer> => {
    let headers = CORS_HEADERS;
    try {
      const request = readApiRequest(incoming);
      const { method, path } = request;
      if (path === "/openapi.json" && (method === "GET" || method === "HEAD"))
        return { status: 200, json: document, headers };
      const match = router.match(method, path);
      if (!match) throw new NotFoundError(`no endpoint ${method} ${path}`);
      if (match.route.noStore) headers = NO_STORE_HEADERS;
      const reply = await handleRoute(match.route, request, match.params, services);
      const json = reply.status === 200 ? (JSON.stringify(reply.body) ?? "null") : undefined;
      return { status: reply.status, json, headers };
    } catch (err) {
      const { status, body } = errorResponse(err, services.logger);
      // The rest of a body too large to take is never read, and node would keep the connection
      // open for a next request behind it: close it after this answer instead.
      if (status === 413) headers = { ...headers, connection: "close" };
      return { status, json: JSON.stringify(body), headers };
    }
  };

  return (incoming, outgoing) => {
    if (incoming.method === "OPTIONS") {
      outgoing.writeHead(204, PREFLIGHT_HEADERS).end();
      return;
    }
    void answer(incoming)
      .then(({ status, json, headers }) => {
        // The keep-alive hint every answer carries (node-server.ts) is no promise on a closing one.
        if (headers.connection === "close") outgoing.removeHeader("keep-alive");
        if (json === undefined) outgoing.writeHead(status, headers).end();
        else {
          // The route's headers spread last (none of them names these two): see buildCommit.
          outgoing
            .writeHead(status, {
              "content-type": "application/json",
              "content-length": Buffer.byteLength(json),
              ...headers,
            })
            .end(json);
        }
      })
      // Only writing can fail here, on a socket already gone: nobody is left to answer.
      .catch(() => outgoing.destroy());
  };
}
