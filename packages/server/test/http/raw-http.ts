// HTTP for hostile tests: requests through node:http (repeated headers, any body, chunked bodies)
// and through a bare socket (bytes node:http refuses to send: NUL, raw UTF-8, broken requests).
import { request } from "node:http";
import { connect } from "node:net";

export type Header = readonly [name: string, value: string];

export type RawRequest = {
  method: string;
  /** The request target exactly as sent: path and query (or an absolute URL). */
  target: string;
  /** In order; a name may repeat (each becomes its own header line). */
  headers?: readonly Header[];
  /** One buffer is sent with a content-length; an array of chunks is sent chunked. */
  body?: string | Uint8Array | readonly Uint8Array[];
};

export type RawResponse = {
  status: number;
  headers: Record<string, string>;
  text: string;
};

/** Sends one request on its own connection and answers the response (never throws on status). */
export function sendRaw(
  baseUrl: string,
  req: RawRequest,
  timeoutMs = 30_000,
): Promise<RawResponse> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    let answered = false;
    const outgoing = request(
      { host: hostname, port, method: req.method, path: req.target, agent: false },
      (incoming) => {
        answered = true;
        const chunks: Buffer[] = [];
        incoming.on("data", (chunk: Buffer) => chunks.push(chunk));
        incoming.on("error", reject);
        incoming.on("end", () => {
          const headers: Record<string, string> = {};
          for (const [name, value] of Object.entries(incoming.headers)) {
            if (value !== undefined) headers[name] = [value].flat().join(", ");
          }
          resolve({
            status: incoming.statusCode ?? 0,
            headers,
            text: Buffer.concat(chunks).toString("utf8"),
          });
        });
      },
    );
    outgoing.setTimeout(timeoutMs, () =>
      outgoing.destroy(new Error(`no answer in ${timeoutMs} ms`)),
    );
    // The server may answer (413, 401…) and close before a large body is all sent: that answer
    // counts; only a failure with no answer at all is an error.
    outgoing.on("error", (err) => {
      if (!answered) reject(err);
    });
    const grouped = new Map<string, string[]>();
    for (const [name, value] of req.headers ?? []) {
      const key = name.toLowerCase();
      grouped.set(key, [...(grouped.get(key) ?? []), value]);
    }
    for (const [name, values] of grouped) {
      outgoing.setHeader(name, values.length === 1 ? values[0]! : values);
    }
    const { body } = req;
    if (body === undefined) {
      outgoing.end();
    } else if (typeof body === "string" || body instanceof Uint8Array) {
      outgoing.setHeader("content-length", Buffer.byteLength(body));
      outgoing.end(body);
    } else {
      writeChunks(outgoing, body);
    }
  });
}

function writeChunks(
  outgoing: ReturnType<typeof request>,
  chunks: readonly Uint8Array[],
  index = 0,
): void {
  if (outgoing.destroyed) return;
  if (index === chunks.length) {
    outgoing.end();
    return;
  }
  const flushed = outgoing.write(chunks[index]!);
  if (flushed) writeChunks(outgoing, chunks, index + 1);
  else outgoing.once("drain", () => writeChunks(outgoing, chunks, index + 1));
}

/**
 * Writes `bytes` as they are to a fresh connection and reads until the server closes it (send
 * `connection: close`). Parses one HTTP/1.1 response, chunked or not.
 */
export function sendBytes(
  baseUrl: string,
  bytes: Uint8Array,
  timeoutMs = 30_000,
): Promise<RawResponse> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) });
    const chunks: Buffer[] = [];
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    socket.on("connect", () => socket.write(bytes));
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", (err) => {
      // A reset after the answer arrived still leaves a full answer to parse.
      const parsed = chunks.length > 0 ? tryParse(Buffer.concat(chunks)) : undefined;
      if (parsed) resolve(parsed);
      else reject(err);
    });
    socket.on("end", () => {
      const parsed = tryParse(Buffer.concat(chunks));
      if (parsed) resolve(parsed);
      else
        reject(
          new Error(
            `not an HTTP response: ${JSON.stringify(Buffer.concat(chunks).toString("latin1"))}`,
          ),
        );
    });
  });
}

function tryParse(data: Buffer): RawResponse | undefined {
  const end = data.indexOf("\r\n\r\n");
  if (end === -1) return undefined;
  const [statusLine = "", ...lines] = data.subarray(0, end).toString("latin1").split("\r\n");
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
  if (!match) return undefined;
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  let body = data.subarray(end + 4);
  if (/chunked/i.test(headers["transfer-encoding"] ?? "")) body = dechunk(body);
  else if (headers["content-length"] !== undefined) {
    body = body.subarray(0, Number(headers["content-length"]));
  }
  return { status: Number(match[1]), headers, text: body.toString("utf8") };
}

function dechunk(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = data.indexOf("\r\n", at);
    if (lineEnd === -1) break;
    const size = parseInt(data.subarray(at, lineEnd).toString("latin1"), 16);
    if (!Number.isFinite(size) || size === 0) break;
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

/** A request as bytes: request line, headers, an optional body with its content-length. */
export function requestBytes(
  method: string,
  target: string | Uint8Array,
  headers: readonly Header[],
  body?: string,
): Buffer {
  const head = [
    ...(body === undefined ? [] : [["content-length", String(Buffer.byteLength(body))] as const]),
    ["connection", "close"] as const,
    ...headers,
  ]
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join("");
  return Buffer.concat([
    Buffer.from(`${method} `, "latin1"),
    typeof target === "string" ? Buffer.from(target, "latin1") : target,
    Buffer.from(` HTTP/1.1\r\n${head}\r\n`, "latin1"),
    Buffer.from(body ?? "", "utf8"),
  ]);
}
