// Where the server may fetch an identity provider's JWKS from. An org admin chooses the URL, so
// without limits they could make the server request its own internal network (cloud metadata at
// 169.254.169.254, databases on 10.x, admin ports on localhost). So: https only; every address the
// host resolves to must be public, unless the operator allows private ones; plain http only to
// loopback, and only in development. The check runs where the connection is made (a `lookup`
// that refuses before connecting, and answers only checked addresses), so a DNS answer that
// changes between a check and the connection (rebinding) gains nothing.
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from "node:dns";
import { BlockList, isIP, type LookupFunction } from "node:net";

export type JwksAddressPolicy = {
  /**
   * Development: JWKS over http:// or https:// from loopback addresses (127.0.0.0/8, ::1, and
   * names resolving there, such as localhost). Default false.
   */
  allowLoopback: boolean;
  /**
   * JWKS (over https) from private, loopback, link-local and unique-local addresses too, for
   * identity providers inside the operator's own network. Default false.
   */
  allowPrivate: boolean;
};

export type AddressKind = "public" | "loopback" | "private";

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");

// Everything that is not an address on the public internet (IANA special-purpose registries).
const NOT_PUBLIC = new BlockList();
for (const [network, prefix] of [
  ["0.0.0.0", 8], // "this network"
  ["10.0.0.0", 8],
  ["100.64.0.0", 10], // carrier-grade NAT
  ["169.254.0.0", 16], // link-local, cloud metadata
  ["172.16.0.0", 12],
  ["192.0.0.0", 24], // IETF protocol assignments
  ["192.0.2.0", 24], // documentation
  ["192.88.99.0", 24], // 6to4 relays
  ["192.168.0.0", 16],
  ["198.18.0.0", 15], // benchmarking
  ["198.51.100.0", 24], // documentation
  ["203.0.113.0", 24], // documentation
  ["224.0.0.0", 3], // multicast, reserved, broadcast
] as const) {
  NOT_PUBLIC.addSubnet(network, prefix, "ipv4");
}
for (const [network, prefix] of [
  // Unspecified, and the deprecated IPv4-compatible form (::a.b.c.d), which some stacks still
  // route to the IPv4 address it embeds (::1, loopback, is checked before this list).
  ["::", 96],
  ["::ffff:0:0:0", 96], // IPv4-translated (RFC 2765): embeds an IPv4 address too
  ["64:ff9b::", 96], // NAT64 (its usual form, with the IPv4 address in the last 32 bits, is classified as that address)
  ["64:ff9b:1::", 48], // local-use NAT64
  ["100::", 64], // discard-only
  ["2001::", 23], // IETF protocol assignments (Teredo among them)
  ["2001:db8::", 32], // documentation
  ["2002::", 16], // 6to4: embeds any IPv4 address
  ["fc00::", 7], // unique-local
  ["fe80::", 10], // link-local
  ["fec0::", 10], // site-local (deprecated)
  ["ff00::", 8], // multicast
] as const) {
  NOT_PUBLIC.addSubnet(network, prefix, "ipv6");
}

/** What kind of address `address` (an IP literal) is. IPv4-mapped and NAT64 forms count as IPv4. */
export function classifyAddress(address: string): AddressKind {
  const family = isIP(address);
  if (family === 0) return "private";
  if (family === 6) {
    const embedded = embeddedIpv4(address);
    if (embedded !== undefined) return classifyAddress(embedded);
  }
  const type = family === 4 ? "ipv4" : "ipv6";
  if (LOOPBACK.check(address, type)) return "loopback";
  return NOT_PUBLIC.check(address, type) ? "private" : "public";
}

/**
 * Why the policy refuses `address` for a URL of `protocol`, or undefined when it allows it. The
 * reason names the address as `shownAs`: a host name's addresses are not shown (they would tell
 * whoever asks what the server's internal names resolve to).
 */
export function refusal(
  address: string,
  protocol: string,
  policy: JwksAddressPolicy,
  shownAs = address,
): string | undefined {
  const kind = classifyAddress(address);
  if (protocol === "http:") {
    if (policy.allowLoopback && kind === "loopback") return undefined;
    return policy.allowLoopback
      ? `http:// is allowed for loopback addresses only, and ${shownAs} is not one`
      : "JWKS URLs must use https://";
  }
  if (kind === "public") return undefined;
  if (kind === "loopback" && (policy.allowLoopback || policy.allowPrivate)) return undefined;
  if (kind === "private" && policy.allowPrivate) return undefined;
  return `${shownAs} is a ${kind} address, and this server does not fetch from ${kind} addresses`;
}

/** `refusal` for an address `hostname` resolved to, without showing the address. */
export function nameRefusal(
  hostname: string,
  address: string,
  protocol: string,
  policy: JwksAddressPolicy,
): string | undefined {
  return refusal(address, protocol, policy, `an address of ${hostname}`);
}

/** A refused address: the URL may never be fetched while the policy stands. */
export class AddressRefusedError extends Error {
  override name = "AddressRefusedError";
}

/**
 * A `lookup` for node's http(s) requests that resolves with the system resolver and refuses
 * (before any connection) when any address the name resolves to is refused.
 */
export function guardedLookup(protocol: string, policy: JwksAddressPolicy): LookupFunction {
  return (hostname, options: LookupOptions, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
      if (error) {
        callback(error, "", 0);
        return;
      }
      for (const { address } of addresses) {
        const why = nameRefusal(hostname, address, protocol, policy);
        if (why !== undefined) {
          callback(new AddressRefusedError(why), "", 0);
          return;
        }
      }
      const [first] = addresses;
      if (first === undefined) {
        callback(
          Object.assign(new Error(`${hostname} has no address`), { code: "ENOTFOUND" }),
          "",
          0,
        );
      } else if (options.all === true) {
        callback(null, addresses);
      } else {
        callback(null, first.address, first.family);
      }
    });
  };
}

/** The URL's host as an IP literal (brackets dropped), or undefined when it is a name. */
export function ipLiteralOf(url: URL): string | undefined {
  const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  return isIP(host) === 0 ? undefined : host;
}

/** For `::ffff:a.b.c.d`, `::ffff:XXXX:XXXX` and NAT64 `64:ff9b::XXXX:XXXX`: the IPv4 address. */
function embeddedIpv4(address: string): string | undefined {
  // The URL parser writes every IPv6 address in one canonical, compressed, lowercase form.
  let canonical: string;
  try {
    canonical = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
  const match = /^(?:::ffff|64:ff9b:):([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canonical);
  if (!match) return undefined;
  const high = Number.parseInt(match[1]!, 16);
  const low = Number.parseInt(match[2]!, 16);
  return [high >> 8, high & 255, low >> 8, low & 255].join(".");
}
