// The HTTP API as a Hono app: CORS on every response, the routes, the one error renderer. It
// speaks web-standard Request/Response, so tests can call it in-process with `app.request()`.
import { Hono, type Context } from "hono";
import { cors } from "hono/cors";
import { ACT_HEADER, ORG_HEADER } from "../auth/resolve-principal.js";
import { NotFoundError } from "../errors.js";
import { errorResponse } from "./error-response.js";
import { handleRoute } from "./handle-route.js";
import { openApiDocument } from "./openapi.js";
import type { ApiServices } from "./route.js";
import { apiRoutes } from "./routes/all-routes.js";

const API_VERSION = "0.1.0";

export function createApi(services: ApiServices): Hono {
  // A trailing slash on the client's apiHost yields `//machines`; collapse such runs of slashes.
  const app = new Hono({ getPath: (request) => pathOf(request.url).replace(/\/{2,}/g, "/") });
  app.use(
    "*",
    cors({
      origin: "*",
      allowMethods: ["GET", "POST", "PUT", "DELETE", "OPTIONS"],
      allowHeaders: ["authorization", "content-type", ORG_HEADER, ACT_HEADER],
      maxAge: 600,
    }),
  );
  const renderError = (err: unknown, c: Context) => {
    const { status, body } = errorResponse(err, services.logger);
    return c.json(body, status as 400);
  };
  for (const route of apiRoutes) {
    app.on(route.method, route.path, (c) =>
      handleRoute(route, c, services).catch((err: unknown) => renderError(err, c)),
    );
  }
  const document = openApiDocument(apiRoutes, API_VERSION);
  app.get("/openapi.json", (c) => c.json(document));
  app.notFound((c) =>
    renderError(new NotFoundError(`no endpoint ${c.req.method} ${c.req.path}`), c),
  );
  app.onError(renderError);
  return app;
}

function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("://") + 3);
  if (start === -1) return "/";
  const end = url.indexOf("?", start);
  return end === -1 ? url.slice(start) : url.slice(start, end);
}
