// One API request as the routes see it, read straight off node's IncomingMessage. Building a
// web-standard Request (and Response) for every call cost about 40 µs of CPU per request on
// node (measured: 62 µs against 20 µs for the same trivial JSON endpoint), a fifth of the whole
// path of one event; the routes only need the method, the path, the query, headers and the body.
import type { IncomingMessage } from "node:http";
import { InvalidParameterError } from "../errors.js";

export type ApiRequest = {
  /** Upper case, as sent. */
  method: string;
  /** Percent-encoded, dot segments resolved, runs of slashes collapsed to one. */
  path: string;
  query: URLSearchParams;
  /** `http://` and the Host header, checked: what the client reached this server at. */
  origin: string;
  /** A header's value; repeated headers are joined with ", ", as web-standard Headers do. */
  header(name: string): string | undefined;
  /** The unread body. */
  incoming: IncomingMessage;
};

/**
 * Reads the request line and Host the way a URL parser would, refusing what is ambiguous: a
 * missing or malformed Host, a backslash in the path (some servers treat it as a slash), an
 * absolute-form target naming another host.
 */
export function readApiRequest(incoming: IncomingMessage): ApiRequest {
  const target = incoming.url ?? "/";
  const host = incoming.headers.host;
  if (!host) throw new InvalidParameterError("host", "the request has no Host header");
  const queryAt = target.indexOf("?");
  const rawPath = queryAt === -1 ? target : target.slice(0, queryAt);
  if (!rawPath.startsWith("/")) {
    throw new InvalidParameterError("path", "the request target must be a path");
  }
  if (rawPath.includes("\\")) {
    throw new InvalidParameterError("path", "the path holds a backslash");
  }
  let url: URL;
  try {
    url = new URL(`http://${host}${target}`);
  } catch {
    throw new InvalidParameterError("host", "the Host header is not a valid host");
  }
  // The parser would take "a@b" or "a/b" as a host it then reports shorter: refuse those.
  if (url.host !== host.toLowerCase() && url.hostname !== host.replace(/:\d+$/, "").toLowerCase()) {
    throw new InvalidParameterError("host", "the Host header is not a valid host");
  }
  return {
    method: incoming.method ?? "GET",
    path: url.pathname.replace(/\/{2,}/g, "/"),
    query: url.searchParams,
    origin: url.origin,
    header: (name) => incoming.headersDistinct[name]?.join(", "),
    incoming,
  };
}
