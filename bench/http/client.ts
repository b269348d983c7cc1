// The benchmarks' HTTP client: one keep-alive node:http Agent with a socket per worker, so every
// request after the first on a worker reuses its connection, on both sides alike. Idle sockets are
// closed after 2 s on this side, well before a server closes them (node's default keep-alive
// timeout is 5 s, and each side sits idle while the other runs): a request sent on a socket the
// server is closing at that moment fails with "socket hang up".
import { Agent, request } from "node:http";

export type Reply = { status: number; body: string };

const IDLE_SOCKET_MS = 2_000;

export class HttpClient {
  readonly #agent: Agent;
  readonly #host: string;
  readonly #port: number;

  constructor(baseUrl: string, sockets: number) {
    const url = new URL(baseUrl);
    this.#host = url.hostname;
    this.#port = Number(url.port);
    this.#agent = new Agent({
      keepAlive: true,
      maxSockets: sockets,
      maxFreeSockets: sockets,
      timeout: IDLE_SOCKET_MS,
    });
  }

  /** One request with an optional JSON body; answers the status and the body as text. */
  call(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Reply> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        {
          agent: this.#agent,
          host: this.#host,
          port: this.#port,
          method,
          path,
          headers: {
            ...headers,
            ...(payload === undefined
              ? {}
              : {
                  "content-type": "application/json",
                  "content-length": String(Buffer.byteLength(payload)),
                }),
          },
        },
        (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => (text += chunk));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(payload);
    });
  }

  /** Like call, but throws unless the status is `expected`; answers the parsed JSON body. */
  async json<T>(
    expected: number,
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<T> {
    const reply = await this.call(method, path, body, headers);
    if (reply.status !== expected) {
      throw new Error(`${method} ${path}: ${reply.status} (wanted ${expected}) ${reply.body}`);
    }
    return (reply.body ? JSON.parse(reply.body) : undefined) as T;
  }

  close(): void {
    this.#agent.destroy();
  }
}
