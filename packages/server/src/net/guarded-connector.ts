// An undici connector that opens connections to public addresses only. Whoever chose the URL
// (machine code, through fetch) must not reach the network Backstate runs in: the check is made
// on the very address each connection goes to, after resolving the name here, so a name that
// resolves to a private address, a DNS answer that changes between two lookups (rebinding) and a
// redirect to an internal URL (a new connection, so a new check) are all refused, before
// anything is sent.
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { buildConnector } from "undici";
import { AddressRefusedError, classifyAddress } from "./address-kind.js";

export type ResolvedAddress = { address: string; family: number };

/** Every address `hostname` resolves to. The default asks the system resolver (dns.lookup). */
export type Resolver = (hostname: string) => Promise<readonly ResolvedAddress[]>;

export type GuardedConnectorOptions = {
  resolve?: Resolver;
  /** What opens a connection to a checked address. Default: undici's own buildConnector(). */
  connect?: buildConnector.connector;
  /** Added to each refusal's message, e.g. how an operator may allow private addresses. */
  advice?: string;
};

const systemResolver: Resolver = (hostname) => lookup(hostname, { all: true });

/**
 * A connector for undici's `Agent({ connect })`. Resolves the host (an IP literal is taken as
 * it is), refuses unless every address is public, then connects to the checked addresses in
 * turn until one answers. The original host name stays the TLS server name, so SNI and the
 * certificate check are as without the guard.
 */
export function guardedConnector(options: GuardedConnectorOptions = {}): buildConnector.connector {
  const resolve = options.resolve ?? systemResolver;
  const connect = options.connect ?? buildConnector({});
  const advice = options.advice === undefined ? "" : ` (${options.advice})`;
  return (target, callback) => {
    // Called exactly once, whatever throws on the way: a connector that never calls back leaves
    // its fetch pending for ever.
    let answered = false;
    const answer: buildConnector.Callback = (...result) => {
      if (answered) return;
      answered = true;
      callback(...result);
    };
    checkedAddresses(target, resolve, advice)
      .then((addresses) => connectInTurn(connect, target, addresses, 0, answer))
      .catch((error: unknown) => answer(asError(error), null));
  };
}

async function checkedAddresses(
  target: buildConnector.Options,
  resolve: Resolver,
  advice: string,
): Promise<readonly ResolvedAddress[]> {
  if (target.socketPath != null || target.httpSocket !== undefined) {
    throw new AddressRefusedError(`only TCP connections to public addresses are allowed${advice}`);
  }
  const host = withoutBrackets(target.hostname);
  const family = isIP(host);
  if (family !== 0) {
    const kind = classifyAddress(host);
    if (kind !== "public") {
      throw new AddressRefusedError(`${host} is a ${kind} address${advice}`);
    }
    return [{ address: host, family }];
  }
  const addresses = await resolve(host);
  if (addresses.length === 0) {
    throw Object.assign(new Error(`${host} has no address`), { code: "ENOTFOUND" });
  }
  for (const { address } of addresses) {
    const kind = classifyAddress(address);
    // Neither the addresses nor their kind are shown: they would tell whoever asks what internal
    // names resolve to.
    if (kind !== "public") {
      throw new AddressRefusedError(`${host} resolves to an address that is not public${advice}`);
    }
  }
  return addresses;
}

function connectInTurn(
  connect: buildConnector.connector,
  target: buildConnector.Options,
  addresses: readonly ResolvedAddress[],
  index: number,
  callback: buildConnector.Callback,
): void {
  const { address } = addresses[index]!;
  const name = withoutBrackets(target.hostname);
  const servername = target.servername || (isIP(name) === 0 ? name : undefined);
  connect({ ...target, hostname: address, ...(servername ? { servername } : {}) }, (...result) => {
    const [error] = result;
    if (error !== null && index + 1 < addresses.length) {
      connectInTurn(connect, target, addresses, index + 1, callback);
    } else {
      callback(...result);
    }
  });
}

/** undici passes IPv6 literals without their brackets; this is in case it ever does not. */
function withoutBrackets(hostname: string): string {
  return hostname.replace(/^\[(.*)\]$/, "$1");
}

/** Never converts what it was given: a value machine code shaped may throw on conversion. */
function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error("the connection could not be made");
}
