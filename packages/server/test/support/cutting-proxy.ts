// A TCP proxy in front of PostgreSQL that can break one connection at a chosen moment: the way a
// network failure strikes a client in the middle of a statement, made repeatable for tests.
import { createServer, connect, type Server, type Socket } from "node:net";

/**
 * When the next client message holding `marker` comes by (and with `down`, the database then goes
 * away as in a restart: every connection breaks, and new ones are refused until `comeUp()`):
 * - "before-sending": it is not passed on, and the connection breaks (the database never saw it);
 * - "after-sending": it is passed on, and the client's side breaks at once while the database's
 *   side stays open, so the database goes on with it undisturbed (and its answer is lost);
 * - "after-answer": it is passed on, and the connection breaks as the database's answer comes
 *   back, which is then lost (the database did the work; the client cannot know).
 * One-shot: the connections after that pass everything.
 */
export type Cut = {
  marker: string;
  when: "before-sending" | "after-sending" | "after-answer";
  down?: boolean;
};

export class CuttingProxy {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #cut: Cut | undefined;
  #down = false;
  #port = 0;

  private constructor(target: { host: string; port: number }) {
    this.#server = createServer((client) => {
      if (this.#down) client.destroy();
      else this.#relay(client, target);
    });
  }

  /** Listens on a free loopback port, relaying to `target`. */
  static async start(target: { host: string; port: number }): Promise<CuttingProxy> {
    const proxy = new CuttingProxy(target);
    await new Promise<void>((resolve) => proxy.#server.listen(0, "127.0.0.1", resolve));
    const address = proxy.#server.address();
    if (address === null || typeof address === "string") throw new Error("no port");
    proxy.#port = address.port;
    return proxy;
  }

  /** `databaseUrl` with its host and port replaced by the proxy's. */
  urlFor(databaseUrl: string): string {
    const url = new URL(databaseUrl);
    url.hostname = "127.0.0.1";
    url.port = String(this.#port);
    return url.toString();
  }

  /** Arms the next cut. */
  cutNext(cut: Cut): void {
    this.#cut = cut;
  }

  /** Whether the cut armed last has struck. */
  get cutDone(): boolean {
    return this.#cut === undefined;
  }

  /** Whether the database is away (see Cut's `down`). */
  get down(): boolean {
    return this.#down;
  }

  /** Breaks every connection, and refuses new ones until comeUp(). */
  goDown(): void {
    this.#down = true;
    for (const socket of this.#sockets) socket.destroy();
  }

  comeUp(): void {
    this.#down = false;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #relay(client: Socket, target: { host: string; port: number }): void {
    const server = connect(target.port, target.host);
    this.#sockets.add(client).add(server);
    const breakBoth = () => {
      client.destroy();
      server.destroy();
    };
    let keepServer = false; // "after-sending": the database's side outlives the client's
    client.on("close", () => this.#sockets.delete(client) && !keepServer && server.destroy());
    server.on("close", () => this.#sockets.delete(server) && client.destroy());
    client.on("error", breakBoth);
    server.on("error", breakBoth);

    let seen = ""; // the tail of what the client sent, so a marker split across chunks is found
    let answerToLose = false;
    let downAfter = false;
    client.on("data", (chunk: Buffer) => {
      const cut = this.#cut;
      const text = seen + chunk.toString("latin1");
      seen = text.slice(-256);
      if (cut !== undefined && text.includes(cut.marker)) {
        this.#cut = undefined;
        if (cut.when === "before-sending") return breakBoth();
        if (cut.when === "after-sending") {
          keepServer = true;
          server.write(chunk);
          return client.destroy();
        }
        answerToLose = true;
        downAfter = cut.down === true;
      }
      server.write(chunk);
    });
    server.on("data", (chunk: Buffer) => {
      if (answerToLose) {
        breakBoth();
        if (downAfter) this.goDown();
        return;
      }
      if (!client.destroyed) client.write(chunk);
    });
  }
}
