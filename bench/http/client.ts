// The load generator's HTTP client: one keep-alive node:http Agent with a socket per worker, so
// every request after the first on a worker reuses its connection, on both sides alike.
import { Agent, request } from "node:http";

export type Reply = { status: number; body: string };

export class HttpClient {
  readonly #agent: Agent;
  readonly #host: string;
  readonly #port: number;

  constructor(baseUrl: string, sockets: number) {
    const url = new URL(baseUrl);
    this.#host = url.hostname;
    this.#port = Number(url.port);
    this.#agent = new Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets });
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
