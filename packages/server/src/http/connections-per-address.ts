// How many connections each client holds, so that no one client takes more than its share of a
// node's connection cap. Without a share, one address keeping many connections busy with cheap
// requests (never idle, never slow, so never reclaimed at the cap) could hold most of the places
// and keep everyone else out.
import { BlockList, isIP } from "node:net";
import { canonicalIpv6, ipv4InCanonical } from "../net/address-kind.js";

/** The share a client gets whatever the cap, so that a benchmark or a busy proxy fits in it. */
export const MIN_CONNECTIONS_PER_ADDRESS = 64;

/** The default share: a quarter of the cap, at least MIN_CONNECTIONS_PER_ADDRESS, at most all of it. */
export function defaultMaxConnectionsPerAddress(maxConnections: number): number {
  return Math.min(
    maxConnections,
    Math.max(MIN_CONNECTIONS_PER_ADDRESS, Math.floor(maxConnections / 4)),
  );
}

/**
 * Loopback and the networks a node's own proxies and load balancers sit in. A connection
 * from one of them most likely carries many clients (a reverse proxy on loopback, a Docker
 * bridge's gateway, a Kubernetes ingress): its address's share would cap them all together, and
 * only the proxy can tell them apart. Narrower than address-kind.ts's "not public" list on
 * purpose: 6to4 and Teredo addresses, say, are internet clients, and are limited.
 */
const LOCAL_NETWORKS = new BlockList();
for (const [network, prefix] of [
  ["127.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10], // carrier-grade NAT, also overlay networks (Tailscale)
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.168.0.0", 16],
] as const) {
  LOCAL_NETWORKS.addSubnet(network, prefix, "ipv4");
}
LOCAL_NETWORKS.addAddress("::1", "ipv6");
LOCAL_NETWORKS.addSubnet("fc00::", 7, "ipv6"); // unique-local
LOCAL_NETWORKS.addSubnet("fe80::", 10, "ipv6"); // link-local

const SIX_TO_FOUR = new BlockList();
SIX_TO_FOUR.addSubnet("2002::", 16, "ipv6");

/** The client a remote address counts as, and whether it is on loopback or a private network. */
export type Client = { key: string; local: boolean };

/**
 * The client behind `remoteAddress`: an IPv4 address (written as such when it came IPv4-mapped,
 * `::ffff:1.2.3.4`, or through NAT64), or an IPv6 /64, the least block one subscriber is given
 * (were each IPv6 address its own client, anyone could open connections from 2^64 of them).
 * Undefined for what is not an IP address (a socket already closed has none).
 */
export function clientOf(remoteAddress: string | undefined): Client | undefined {
  if (remoteAddress === undefined) return undefined;
  // A zone (fe80::1%eth0) names an interface of this machine, not a client.
  const address = remoteAddress.split("%")[0]!;
  const family = isIP(address);
  if (family === 4) return ipv4Client(address);
  if (family !== 6) return undefined;
  const canonical = canonicalIpv6(address);
  if (canonical === undefined) return undefined;
  const ipv4 = ipv4InCanonical(canonical);
  if (ipv4 !== undefined) return ipv4Client(ipv4);
  if (LOCAL_NETWORKS.check(address, "ipv6")) return { key: canonical, local: true };
  // A 6to4 address's /48 is derived from one IPv4 address: that address's 65,536 /64s, one client.
  const block = SIX_TO_FOUR.check(address, "ipv6") ? 48 : 64;
  return { key: `${prefix(canonical, block / 16)}::/${block}`, local: false };
}

function ipv4Client(address: string): Client {
  return { key: address, local: LOCAL_NETWORKS.check(address, "ipv4") };
}

/** The first `groups` groups of a canonical IPv6 address (no dotted tail), each as written there. */
function prefix(canonical: string, groups: number): string {
  const [head = "", tail] = canonical.split("::");
  const headGroups = head === "" ? [] : head.split(":");
  const tailGroups = tail === undefined || tail === "" ? [] : tail.split(":");
  const zeros = tail === undefined ? 0 : 8 - headGroups.length - tailGroups.length;
  return [...headGroups, ...Array<string>(zeros).fill("0"), ...tailGroups]
    .slice(0, groups)
    .join(":");
}

/**
 * Admitted: `release` gives the place back once the connection has closed (again: nothing), and
 * `client` is whose share it counts against (none for a client with no share to keep).
 */
export type Admission =
  { admitted: true; client?: string; release: () => void } | { admitted: false; client: string };

export type ConnectionsPerAddressOptions = {
  /** The most connections one client holds at once; 0: no limit. */
  maxPerAddress: number;
  /** Limit clients on loopback and private networks too (tests, whose clients are all there). */
  limitLocal?: boolean;
};

/** The connections each client holds, and the share none may go past. */
export class ConnectionsPerAddress {
  readonly #held = new Map<string, number>();
  readonly #max: number;
  readonly #limitLocal: boolean;

  constructor({ maxPerAddress, limitLocal = false }: ConnectionsPerAddressOptions) {
    if (!(Number.isSafeInteger(maxPerAddress) && maxPerAddress >= 0)) {
      throw new TypeError("maxPerAddress must be a whole number, 0 (no limit) or more");
    }
    this.#max = maxPerAddress;
    this.#limitLocal = limitLocal;
  }

  /** Counts a new connection from `remoteAddress`, unless its client holds its share already. */
  admit(remoteAddress: string | undefined): Admission {
    // With no limit, no address is worth reading (that costs microseconds a connection).
    if (this.#max === 0) return { admitted: true, release: () => {} };
    const client = clientOf(remoteAddress);
    if (client === undefined || (client.local && !this.#limitLocal)) {
      return { admitted: true, release: () => {} };
    }
    const { key } = client;
    const held = this.#held.get(key) ?? 0;
    if (held >= this.#max) return { admitted: false, client: key };
    this.#held.set(key, held + 1);
    let released = false;
    return {
      admitted: true,
      client: key,
      release: () => {
        if (released) return;
        released = true;
        const left = (this.#held.get(key) ?? 1) - 1;
        // Deleted at zero: a client that has gone takes no memory, however many came and went.
        if (left === 0) this.#held.delete(key);
        else this.#held.set(key, left);
      },
    };
  }

  /** The connections counted for the client behind `remoteAddress`. */
  heldBy(remoteAddress: string): number {
    const client = clientOf(remoteAddress);
    return client === undefined ? 0 : (this.#held.get(client.key) ?? 0);
  }

  /** How many clients hold a connection that counts. */
  get clients(): number {
    return this.#held.size;
  }
}
