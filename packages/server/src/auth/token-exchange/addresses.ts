// Where the server may fetch an identity provider's JWKS from. An org admin chooses the URL, so
// without limits they could make the server request its own internal network (cloud metadata at
// 169.254.169.254, databases on 10.x, admin ports on localhost). So: https only; every address the
// host resolves to must be public, unless the operator allows private ones; plain http only to
// loopback, and only in development. The check runs where the connection is made (a `lookup`
// that refuses before connecting, and answers only checked addresses), so a DNS answer that
// changes between a check and the connection (rebinding) gains nothing.
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from "node:dns";
import { isIP, type LookupFunction } from "node:net";
import { AddressRefusedError, classifyAddress } from "../../net/address-kind.js";

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
