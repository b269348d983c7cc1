// The official @statebacked/client, as the tests point it at a server of ours.
import { StateBackedClient } from "@statebacked/client";
import WebSocket from "ws";

type Token = ConstructorParameters<typeof StateBackedClient>[0];
type ClientOptions = NonNullable<ConstructorParameters<typeof StateBackedClient>[1]>;

/** ws, as the client's WebSocket: Node 20 has none of its own for realtime subscriptions. */
const CLIENT_WEBSOCKET = WebSocket as unknown as ClientOptions["WebSocket"];

/** The official client on `apiHost` holding `token`, able to subscribe. */
export function officialClient(
  apiHost: string,
  token: Token,
  options: Omit<ClientOptions, "apiHost"> = {},
): StateBackedClient {
  return new StateBackedClient(token, { apiHost, WebSocket: CLIENT_WEBSOCKET, ...options });
}

/** The admin's official client for a test server's org. */
export function adminClient(api: { url: string; adminToken: string; orgId: string }) {
  return officialClient(api.url, api.adminToken, { orgId: api.orgId });
}
