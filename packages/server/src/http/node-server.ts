// The node:http server under the Hono app. Requests too broken to reach the app still get the
// API's JSON error body: those node's parser refuses (raw bytes in the URL, a 20 KB URL, two
// content-lengths…, which node would answer with a bare "400 Bad Request"), and those
// @hono/node-server cannot turn into a Request (a backslash in the path, a junk Host header).
import { STATUS_CODES, createServer, type Server } from "node:http";
import type { Duplex } from "node:stream";
import { getRequestListener } from "@hono/node-server";

type Fetch = (request: Request) => Response | Promise<Response>;

export function createHttpServer(fetch: Fetch): Server {
  const listener = getRequestListener(fetch, {
    errorHandler: (err) =>
      err instanceof Error && err.name === "RequestError"
        ? Response.json(
            { error: `malformed request: ${err.message}`, code: "invalid-parameter" },
            { status: 400 },
          )
        : Response.json(
            { error: "internal server error", code: "internal-error" },
            { status: 500 },
          ),
  });
  // A missing Host is refused by @hono/node-server (as a RequestError), in JSON, not by node.
  const server = createServer({ requireHostHeader: false }, (incoming, outgoing) => {
    // The listener answers every failure itself; its promise never rejects.
    void listener(incoming, outgoing);
  });
  server.on("clientError", answerClientError);
  return server;
}

const CLIENT_ERRORS: Record<string, [status: number, code: string, error: string]> = {
  HPE_HEADER_OVERFLOW: [431, "payload-too-large", "the request's headers are too large"],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: [413, "payload-too-large", "chunk extensions are too large"],
  ERR_HTTP_REQUEST_TIMEOUT: [408, "request-timeout", "the request took too long to arrive"],
};

/** What node does by default (answer unless a response is under way, then drop), in JSON. */
function answerClientError(err: Error & { code?: string }, socket: Duplex): void {
  const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (err.code !== "ECONNRESET" && socket.writable && !inFlight?.headersSent) {
    const [status, code, error] = CLIENT_ERRORS[err.code ?? ""] ?? [
      400,
      "invalid-parameter",
      `malformed HTTP request (${err.code ?? "unparsable"})`,
    ];
    const body = JSON.stringify({ error, code });
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
        "content-type: application/json\r\n" +
        "access-control-allow-origin: *\r\n" +
        `content-length: ${Buffer.byteLength(body)}\r\n` +
        "connection: close\r\n\r\n" +
        body,
    );
  }
  socket.destroy();
}
