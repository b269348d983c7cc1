// The realtime endpoint's share of the node's connection cap: realtime sockets are never idle, so
// the cap cannot reclaim them, and if they could take every place under it, the API (every
// request, an admin's too) would be answered 503 for as long as they stayed connected. The
// realtime endpoint holds at most four fifths of the cap (20,000 of the default 25,000), also
// when the cap is lower than 20,000 (set so, or shrunk by the open-file limit).
import assert from "node:assert/strict";
import { connect } from "node:net";
import { test } from "node:test";
import { startApiServer } from "../support/api-server.js";
import { openSocket, rtUrl, type RawSocket } from "./raw-socket.js";

/** The status of the answer to one GET on a connection of its own. */
function statusOfGet(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    let data = "";
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      data += chunk;
      const status = /^HTTP\/1\.1 (\d{3})/.exec(data)?.[1];
      if (status !== undefined) {
        socket.destroy();
        resolve(Number(status));
      }
    });
    socket.once("error", reject);
    socket.once("close", () => reject(new Error(`closed after ${JSON.stringify(data)}`)));
    socket.write("GET /machines HTTP/1.1\r\nhost: x\r\n\r\n");
  });
}

test("realtime sockets cannot take every connection under the cap: the API keeps room", async (t) => {
  const api = await startApiServer({ maxConnections: 20 });
  t.after(() => api.dispose());
  const key = await api.createKey(["state.read"]);
  const url = rtUrl(api.url, await api.tokenFor(key, { sub: "u" }));
  const open: RawSocket[] = [];
  t.after(() => open.forEach((socket) => socket.ws.terminate()));
  const refusals: string[] = [];
  for (let i = 0; i < 20; i++) {
    try {
      open.push(await openSocket(url));
    } catch (error) {
      refusals.push(String((error as { code?: unknown }).code));
    }
  }
  assert.equal(open.length, 16, "four fifths of the cap");
  assert.deepEqual(new Set(refusals), new Set(["too-many-connections"]));
  // A request of no caller: answered by the API (refused for want of a token), not at the cap.
  const status = await statusOfGet(Number(new URL(api.url).port));
  assert.notEqual(status, 503, "the API still takes connections");
  assert.equal(status, 403);
});
