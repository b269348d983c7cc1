// A local HTTP server that machine services fetch to wait on the test: each request to
// `${url}<name>` is held until the test opens that name, so a service runs exactly as long as the
// test needs instead of a fixed number of milliseconds (which a loaded machine stretches at will).
// Fixtures fetch it only with allowPrivateNetworkFetch (it is a private address).
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export type ServiceGate = {
  /** Base URL; a service fetches `${url}<name>` and waits for it to answer. */
  url: string;
  /** Resolves once a service has fetched `name` (it is running and waiting). */
  reached(name: string): Promise<void>;
  /** Answers every request to `name`, now and later: the services waiting on it go on. */
  open(name: string): void;
  close(): Promise<void>;
};

export async function startServiceGate(): Promise<ServiceGate> {
  const waiting = new Map<string, ServerResponse[]>();
  const opened = new Set<string>();
  const arrivals = new Map<string, { promise: Promise<void>; resolve: () => void }>();
  const arrival = (name: string) => {
    let entry = arrivals.get(name);
    if (entry === undefined) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      entry = { promise, resolve };
      arrivals.set(name, entry);
    }
    return entry;
  };
  const server = createServer((request, response) => {
    const name = (request.url ?? "/").slice(1);
    arrival(name).resolve();
    if (opened.has(name)) response.end("open");
    else waiting.set(name, [...(waiting.get(name) ?? []), response]);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    reached: (name) => arrival(name).promise,
    open(name) {
      opened.add(name);
      for (const response of waiting.get(name) ?? []) response.end("open");
      waiting.delete(name);
    },
    close() {
      // Requests still held (a node that "died" with its service waiting) are cut off.
      for (const responses of waiting.values())
        for (const response of responses) response.destroy();
      waiting.clear();
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
