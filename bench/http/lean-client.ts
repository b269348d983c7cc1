// The load generator's HTTP/1.1 client: keep-alive connections over node:net, one request at a
// time on each, written as one string and read back by just the status line, content-length and
// body. node:http's client costs more CPU per request than some of the servers measured (about
// 110 µs against 250 µs for a Backstate node, on a slow 2-core machine), and every process here
// shares the same cores: a lighter client leaves them to the servers, as clients on other
// machines would. Every side of a benchmark gets the same client. Answers that node:http would
// also accept but these servers never send (chunked bodies, 1xx, pipelining) are refused loudly.
import { connect, type Socket } from "node:net";
import type { Reply } from "./client.js";

/** What a benchmark's sender needs of an HTTP client (HttpClient has it too). */
export interface LoadClient {
  call(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<Reply>;
  close(): void;
}

type Request = {
  text: string;
  resolve: (reply: Reply) => void;
  reject: (error: Error) => void;
  /** Sent again once already, after a reused connection closed under it. */
  retried?: boolean;
};

// Idle connections are dropped after this long on this side, well before a server closes them
// (node's default keep-alive timeout is 5 s): a request written on a socket the server is closing
// at that moment fails.
const IDLE_SOCKET_MS = 2_000;
const HEADER_END = Buffer.from("\r\n\r\n");

class Connection {
  readonly #socket: Socket;
  #received: Buffer | undefined;
  #request: Request | undefined;
  #connected: Promise<void>;
  /** Answers read on this connection so far. */
  #answered = 0;
  idleSince = 0;
  closed = false;

  constructor(
    host: string,
    port: number,
    private readonly pool: {
      free(c: Connection): void;
      gone(c: Connection): void;
      retry(request: Request): void;
    },
  ) {
    this.#socket = connect({ host, port, noDelay: true });
    this.#connected = new Promise((resolve) => this.#socket.once("connect", resolve));
    this.#socket.on("data", (chunk: Buffer) => this.#read(chunk));
    const gone = (error?: Error) => {
      if (this.closed) return;
      this.closed = true;
      const request = this.#request;
      this.#request = undefined;
      pool.gone(this);
      if (request === undefined) return;
      // A server may close a kept-alive connection after an answer without saying so: a request
      // written on it meanwhile was never read. Asked again once, on another connection, as
      // HTTP clients do for a reused connection that closed before any byte of the answer. (A
      // server that read it and then died would see it twice; the ones measured here do not.)
      if (this.#answered > 0 && this.#received === undefined && !request.retried) {
        request.retried = true;
        pool.retry(request);
      } else request.reject(error ?? new Error("the server closed the connection"));
    };
    this.#socket.on("error", gone);
    // The server's end of the connection: nothing more can be asked on it.
    this.#socket.on("end", () => gone());
    this.#socket.on("close", () => gone());
  }

  send(request: Request): void {
    this.#request = request;
    void this.#connected.then(() => this.#socket.write(request.text));
  }

  /** Closes it; its 'close' event then takes it out of the pool. */
  destroy(): void {
    this.#socket.destroy();
  }

  #read(chunk: Buffer): void {
    const received = this.#received ? Buffer.concat([this.#received, chunk]) : chunk;
    const request = this.#request;
    if (!request) return this.#fail(new Error("data arrived with no request in flight"));
    const headerEnd = received.indexOf(HEADER_END);
    if (headerEnd < 0) {
      this.#received = received;
      return;
    }
    const head = received.toString("latin1", 0, headerEnd);
    const status = Number(head.slice(9, 12));
    const length = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head)?.[1];
    if (!head.startsWith("HTTP/1.1 ") || !(status >= 200) || length === undefined) {
      return this.#fail(new Error(`unsupported answer: ${head.split("\r\n")[0]}`));
    }
    const end = headerEnd + HEADER_END.length + Number(length);
    if (received.length < end) {
      this.#received = received;
      return;
    }
    if (received.length > end) return this.#fail(new Error("more data than one answer"));
    this.#received = undefined;
    this.#request = undefined;
    this.#answered++;
    const body = received.toString("utf8", headerEnd + HEADER_END.length, end);
    if (/\r\nconnection:[ \t]*close/i.test(head)) this.destroy();
    else this.pool.free(this);
    request.resolve({ status, body });
  }

  #fail(error: Error): void {
    this.#request?.reject(error);
    this.#request = undefined;
    this.destroy();
  }
}

export class LeanHttpClient implements LoadClient {
  readonly #host: string;
  readonly #port: number;
  readonly #maxConnections: number;
  readonly #idle: Connection[] = [];
  readonly #waiting: Request[] = [];
  #open = 0;

  constructor(baseUrl: string, maxConnections: number) {
    const url = new URL(baseUrl);
    if (url.protocol !== "http:") throw new Error(`only http: is supported, not ${url.protocol}`);
    this.#host = url.hostname;
    this.#port = Number(url.port || 80);
    this.#maxConnections = maxConnections;
  }

  call(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Reply> {
    const payload = body === undefined ? "" : JSON.stringify(body);
    let text = `${method} ${path} HTTP/1.1\r\nhost: ${this.#host}:${this.#port}\r\n`;
    for (const [name, value] of Object.entries(headers)) text += `${name}: ${value}\r\n`;
    if (body !== undefined) text += "content-type: application/json\r\n";
    text += `content-length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`;
    return new Promise((resolve, reject) => {
      const request: Request = { text, resolve, reject };
      const connection = this.#connectionFor();
      if (connection) connection.send(request);
      else this.#waiting.push(request);
    });
  }

  close(): void {
    for (const connection of this.#idle.splice(0)) connection.destroy();
  }

  /** An idle connection, or a new one while under the limit; undefined when all are busy. */
  #connectionFor(): Connection | undefined {
    const now = Date.now();
    for (let connection = this.#idle.pop(); connection; connection = this.#idle.pop()) {
      if (!connection.closed && now - connection.idleSince < IDLE_SOCKET_MS) return connection;
      connection.destroy();
    }
    if (this.#open >= this.#maxConnections) return undefined;
    this.#open++;
    return new Connection(this.#host, this.#port, this.#pool);
  }

  readonly #pool = {
    /** Its answer arrived: it takes the next waiting request, or goes idle. */
    free: (connection: Connection) => {
      const next = this.#waiting.shift();
      if (next) return connection.send(next);
      connection.idleSince = Date.now();
      this.#idle.push(connection);
    },
    /** Closed: its place goes to a waiting request, if any. */
    gone: (connection: Connection) => {
      this.#open--;
      const at = this.#idle.indexOf(connection);
      if (at >= 0) this.#idle.splice(at, 1);
      const next = this.#waiting.shift();
      if (next) this.#connectionFor()!.send(next);
    },
    /** A request to send again: first in line. */
    retry: (request: Request) => {
      const connection = this.#connectionFor();
      if (connection) connection.send(request);
      else this.#waiting.unshift(request);
    },
  };
}
