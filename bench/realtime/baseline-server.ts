// bench/realtime's baseline: a bare `ws` WebSocketServer on node:http, speaking just enough of
// the /rt protocol for the same clients, with the toggle's state in memory. Per
// POST /machines/toggle/i/<name>/events it parses the JSON body, flips the instance, stamps `ts`,
// sends the same `instance-update` frame (same fields, same order, same size) to every socket
// subscribed to that instance with a plain `socket.send(string)` each, and answers the state.
// No token check, no durability, no allowRead: the cost of the broadcast itself.
// Run by main.ts in a child process.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import { answer, EVENTS_PATH } from "../http/baseline-http.js";
import { serveChild } from "../http/child.js";

type Instance = { state: "on" | "off"; flips: number; ts: number; watchers: Set<WebSocket> };

const instances = new Map<string, Instance>();

function instanceOf(name: string): Instance {
  let instance = instances.get(name);
  if (!instance) {
    instance = { state: "off", flips: 0, ts: Date.now(), watchers: new Set() };
    instances.set(name, instance);
  }
  return instance;
}

const wireState = (instance: Instance) => ({
  state: instance.state,
  publicContext: { flips: instance.flips },
  tags: [],
  done: false,
  ts: instance.ts,
});

const frameOf = (name: string, instance: Instance): string =>
  JSON.stringify({
    type: "instance-update",
    machineName: "toggle",
    machineInstanceName: name,
    ...wireState(instance),
  });

function handle(req: IncomingMessage, res: ServerResponse, raw: string): void {
  const match = req.method === "POST" ? EVENTS_PATH.exec(req.url ?? "") : null;
  if (!match?.[1]) return answer(res, 404, { error: "not found" });
  try {
    const { event } = JSON.parse(raw) as { event?: string | { type: string } };
    if ((typeof event === "string" ? event : event?.type) !== "toggle") {
      return answer(res, 400, { error: "unknown event" });
    }
  } catch {
    return answer(res, 400, { error: "invalid JSON" });
  }
  const name = decodeURIComponent(match[1]);
  const instance = instanceOf(name);
  instance.state = instance.state === "on" ? "off" : "on";
  instance.flips++;
  instance.ts = Math.max(Date.now(), instance.ts + 1);
  const frame = frameOf(name, instance);
  for (const socket of instance.watchers) socket.send(frame);
  answer(res, 200, wireState(instance));
}

const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  let raw = "";
  req.setEncoding("utf8");
  req.on("data", (chunk: string) => (raw += chunk));
  req.on("end", () => handle(req, res, raw));
});

const textOf = (data: RawData): string =>
  Array.isArray(data) ? Buffer.concat(data).toString() : Buffer.from(data as Buffer).toString();

const wss = new WebSocketServer({ server, path: "/rt", maxPayload: 16 * 1024 });
wss.on("connection", (socket) => {
  const watching = new Set<Instance>();
  socket.on("message", (data) => {
    let message: { type?: string; machineInstanceName?: string };
    try {
      message = JSON.parse(textOf(data)) as typeof message;
    } catch {
      return socket.send(JSON.stringify({ type: "error", status: 400, error: "not JSON" }));
    }
    if (message.type !== "subscribe-to-instance" || !message.machineInstanceName) return;
    const instance = instanceOf(message.machineInstanceName);
    instance.watchers.add(socket);
    watching.add(instance);
    socket.send(frameOf(message.machineInstanceName, instance));
  });
  socket.on("error", () => socket.terminate());
  socket.on("close", () => {
    for (const instance of watching) instance.watchers.delete(socket);
  });
});

await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const { port } = server.address() as AddressInfo;

serveChild({ url: `http://127.0.0.1:${port}`, pid: process.pid }, async () => {
  for (const socket of wss.clients) socket.terminate();
  wss.close();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});
