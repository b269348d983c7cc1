// The node:http half every hand-written baseline shares: POST /machines/toggle/i/<name>/events
// with `{ event }` is handed to `send` and answered with its state as JSON; POST /empty answers
// at once (the load generator's own ceiling). Announces itself to the parent (child.ts).
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { serveChild } from "./child.js";

export type ToggleEvent = { type: string };

/** The send-event path of the toggle machine; its one group is the instance name, encoded. */
export const EVENTS_PATH = /^\/machines\/toggle\/i\/([^/]+)\/events$/;

/** Answers `body` as JSON with a content-length. */
export function answer(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

export async function serveToggleBaseline(
  send: (instance: string, event: ToggleEvent) => unknown,
  close: () => Promise<void> | void,
): Promise<void> {
  const handle = (req: IncomingMessage, res: ServerResponse, raw: string): void => {
    if (req.method === "POST" && req.url === "/empty") return answer(res, 200, {});
    const match = req.method === "POST" ? EVENTS_PATH.exec(req.url ?? "") : null;
    if (!match?.[1]) return answer(res, 404, { error: "not found" });
    let event: ToggleEvent;
    try {
      const body = JSON.parse(raw) as { event?: string | ToggleEvent };
      if (body.event === undefined) return answer(res, 400, { error: "no event" });
      event = typeof body.event === "string" ? { type: body.event } : body.event;
    } catch {
      return answer(res, 400, { error: "invalid JSON" });
    }
    // A synchronous send (SQLite) answers in this turn; an asynchronous one (pg) when it settles.
    let state: unknown;
    try {
      state = send(decodeURIComponent(match[1]), event);
    } catch (error) {
      return answer(res, 500, { error: String(error) });
    }
    if (state instanceof Promise) {
      state.then(
        (settled) => answer(res, 200, settled),
        (error: unknown) => answer(res, 500, { error: String(error) }),
      );
    } else answer(res, 200, state);
  };
  const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    let raw = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => (raw += chunk));
    req.on("end", () => handle(req, res, raw));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  serveChild({ url: `http://127.0.0.1:${port}` }, async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await close();
  });
}
