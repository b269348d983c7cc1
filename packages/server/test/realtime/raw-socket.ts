// A raw `ws` client for realtime tests: collects every message and waits for the ones a test
// expects, failing with what it did receive when they do not come.
import WebSocket from "ws";

export type Message = { type: string; [field: string]: unknown };

export type RawSocket = {
  ws: WebSocket;
  messages: Message[];
  send(message: unknown): void;
  /** Resolves with the first matching message at index `from` (default 0) or later. */
  next(match: (message: Message) => boolean, from?: number, timeoutMs?: number): Promise<Message>;
  close(): Promise<void>;
};

export function rtUrl(apiUrl: string, token: string, orgId?: string): string {
  const url = new URL("/rt", apiUrl.replace(/^http/, "ws"));
  url.searchParams.set("token", token);
  if (orgId) url.searchParams.set("x-statebacked-org-id", orgId);
  return url.toString();
}

export function openSocket(url: string): Promise<RawSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const messages: Message[] = [];
    const waiters = new Set<() => void>();
    ws.on("message", (data) => {
      messages.push(JSON.parse((data as Buffer).toString()) as Message);
      for (const wake of waiters) wake();
    });
    // Refused with the API's JSON error: its status and code.
    ws.once("unexpected-response", (_request, response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () => {
        const code = (JSON.parse(body || "{}") as { code?: unknown }).code;
        const refused = new Error(`handshake refused: ${response.statusCode} ${body}`);
        reject(Object.assign(refused, { status: response.statusCode, code }));
      });
    });
    ws.once("error", reject);
    ws.once("open", () =>
      resolve({
        ws,
        messages,
        send: (message) => ws.send(typeof message === "string" ? message : JSON.stringify(message)),
        next(match, from = 0, timeoutMs = 5000) {
          let seen = from;
          return new Promise((found, fail) => {
            const check = () => {
              for (; seen < messages.length; seen++) {
                const message = messages[seen]!;
                if (match(message)) {
                  waiters.delete(check);
                  clearTimeout(timer);
                  found(message);
                  return;
                }
              }
            };
            const timer = setTimeout(() => {
              waiters.delete(check);
              fail(new Error(`no matching message; received ${JSON.stringify(messages)}`));
            }, timeoutMs);
            waiters.add(check);
            check();
          });
        },
        close: () =>
          new Promise<void>((closed) => {
            if (ws.readyState === WebSocket.CLOSED) return closed();
            ws.once("close", () => closed());
            ws.close();
          }),
      }),
    );
  });
}
