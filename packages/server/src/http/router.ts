// Finds the route for a method and path. Paths use `:name` segments (`/machines/:machineName`);
// a segment matches exactly or, for a parameter, any non-empty segment, percent-decoded. HEAD
// is answered by the GET route (without a body, which node leaves out by itself).
import type { Route } from "./route.js";

type Compiled = { route: Route; segments: Array<{ literal: string } | { param: string }> };

export type RouteMatch = { route: Route; params: Record<string, string> };

export class Router {
  readonly #byMethod = new Map<string, Compiled[]>();

  constructor(routes: readonly Route[]) {
    for (const route of routes) {
      const segments = route.path
        .split("/")
        .slice(1)
        .map((part) => (part.startsWith(":") ? { param: part.slice(1) } : { literal: part }));
      const list = this.#byMethod.get(route.method) ?? [];
      list.push({ route, segments });
      this.#byMethod.set(route.method, list);
    }
  }

  match(method: string, path: string): RouteMatch | undefined {
    const candidates = this.#byMethod.get(method === "HEAD" ? "GET" : method);
    if (!candidates) return undefined;
    const parts = path.split("/").slice(1);
    for (const { route, segments } of candidates) {
      if (segments.length !== parts.length) continue;
      const params: Record<string, string> = {};
      const matched = segments.every((segment, i) => {
        const part = parts[i]!;
        if ("literal" in segment) return segment.literal === part;
        if (part === "") return false;
        params[segment.param] = decodeSegment(part);
        return true;
      });
      if (matched) return { route, params };
    }
    return undefined;
  }
}

/** A malformed escape is left as sent: the parameter's schema then refuses it by name. */
function decodeSegment(part: string): string {
  if (!part.includes("%")) return part;
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}
