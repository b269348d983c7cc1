// Whether an IP address is on the public internet. Every place the server or a sandbox connects
// to an address that someone else chose (a JWKS URL, machine code's fetch) asks this first, so
// that nobody can make Backstate reach into the network it runs in: loopback services, cloud
// metadata at 169.254.169.254, databases on 10.x. One list, kept here, for all of them.
import { BlockList, isIP } from "node:net";

export type AddressKind = "public" | "loopback" | "private";

/** A connection refused because an address it would go to is not allowed (JWKS, machines' fetch). */
export class AddressRefusedError extends Error {
  override name = "AddressRefusedError";
  readonly code = "address-refused";
}
// Machine code reaches these errors (as a failed fetch's cause): frozen, it cannot reshape the
// next refusal, in its own sandbox, into something the connector cannot report.
Object.freeze(AddressRefusedError.prototype);
Object.freeze(AddressRefusedError);

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
  ["168.63.129.16", 32], // Azure's host endpoint (WireServer): public in form, the cloud's own inside
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
  ["3fff::", 20], // documentation (RFC 9637)
  ["2002::", 16], // 6to4: embeds any IPv4 address
  ["fc00::", 7], // unique-local
  ["fe80::", 10], // link-local
  ["fec0::", 10], // site-local (deprecated)
  ["ff00::", 8], // multicast
] as const) {
  NOT_PUBLIC.addSubnet(network, prefix, "ipv6");
}
// IANA allocates public IPv6 addresses from 2000::/3 only; the rest is reserved (or listed above).
const GLOBAL_UNICAST = new BlockList();
GLOBAL_UNICAST.addSubnet("2000::", 3, "ipv6");

/**
 * What kind of address `address` (an IP literal, without brackets) is. IPv4-mapped and NAT64
 * forms count as the IPv4 address they embed; anything that is not an IP literal is "private",
 * so a caller that forgot to resolve a name refuses it rather than lets it through. So is an
 * address with a zone (`fe80::1%eth0`): only link-local addresses need one.
 */
export function classifyAddress(address: string): AddressKind {
  const family = isIP(address);
  if (family === 0 || address.includes("%")) return "private";
  if (family === 6) {
    const embedded = embeddedIpv4(address);
    if (embedded !== undefined) return classifyAddress(embedded);
  }
  const type = family === 4 ? "ipv4" : "ipv6";
  if (LOOPBACK.check(address, type)) return "loopback";
  if (type === "ipv6" && !GLOBAL_UNICAST.check(address, type)) return "private";
  return NOT_PUBLIC.check(address, type) ? "private" : "public";
}

/** For `::ffff:a.b.c.d`, `::ffff:XXXX:XXXX` and NAT64 `64:ff9b::XXXX:XXXX`: the IPv4 address. */
export function embeddedIpv4(address: string): string | undefined {
  const canonical = canonicalIpv6(address);
  return canonical === undefined ? undefined : ipv4InCanonical(canonical);
}

/**
 * An IPv6 address in its one canonical form (compressed, lowercase, as the URL parser writes
 * it), so that every spelling of it compares equal; undefined for what is not one.
 */
export function canonicalIpv6(address: string): string | undefined {
  try {
    return new URL(`http://[${address}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
}

/** embeddedIpv4, for an address already in canonicalIpv6's form. */
export function ipv4InCanonical(canonical: string): string | undefined {
  const match = /^(?:::ffff|64:ff9b:):([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canonical);
  if (!match) return undefined;
  const high = Number.parseInt(match[1]!, 16);
  const low = Number.parseInt(match[2]!, 16);
  return [high >> 8, high & 255, low >> 8, low & 255].join(".");
}
