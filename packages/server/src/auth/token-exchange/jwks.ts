// Identity providers' public keys, fetched from their JWKS URLs and cached. A token whose `kid`
// the cached set lacks makes the cache look again (the provider may have rotated its keys), but
// at most once per cooldown per URL, so tokens with made-up kids cannot make the server hammer a
// provider. Fetches are bounded in time and size, follow no redirects, and connect only to
// addresses the policy allows (see addresses.ts).
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import {
  createLocalJWKSet,
  errors,
  type FlattenedJWSInput,
  type JSONWebKeySet,
  type JWSHeaderParameters,
  type LocalJWKSet,
} from "jose";
import { AddressRefusedError } from "../../net/address-kind.js";
import { guardedLookup, ipLiteralOf, refusal, type JwksAddressPolicy } from "./addresses.js";

export type JwksLimits = {
  /** The whole fetch, from lookup to the last byte. Default 5000 ms. */
  timeoutMs: number;
  /** The largest JWKS document accepted. Default 256 KiB. */
  maxBytes: number;
};

export type JwksCacheOptions = JwksLimits & {
  policy: JwksAddressPolicy;
  /** A key set older than this is fetched again (the old one serves if that fails). 10 min. */
  maxAgeMs: number;
  /** The least time between two fetches of one URL, whatever prompts them. Default 30 s. */
  cooldownMs: number;
  /** URLs whose key sets are kept; the least recently used go first. Default 1000. */
  maxEntries: number;
  now: () => number;
};

export const DEFAULT_JWKS_OPTIONS = {
  timeoutMs: 5000,
  maxBytes: 256 * 1024,
  maxAgeMs: 10 * 60_000,
  cooldownMs: 30_000,
  maxEntries: 1000,
} as const;

/** The JWKS could not be had (network, HTTP status, size, not a key set): it may work later. */
export class JwksUnavailableError extends Error {
  override name = "JwksUnavailableError";
}

/** What jose's jwtVerify takes as the key of a token whose keys are in a JWKS. */
export type KeyResolver = (
  header: JWSHeaderParameters,
  token: FlattenedJWSInput,
) => ReturnType<LocalJWKSet>;

type Entry = {
  keySet: { resolve: KeyResolver; fetchedAt: number } | undefined;
  lastAttemptAt: number;
  failure: Error | undefined;
  inflight: Promise<void> | undefined;
};

export class JwksCache {
  readonly #options: JwksCacheOptions;
  readonly #fetch: (url: URL) => Promise<JSONWebKeySet>;
  readonly #entries = new Map<string, Entry>();

  constructor(options: JwksCacheOptions, fetch?: (url: URL) => Promise<JSONWebKeySet>) {
    this.#options = options;
    this.#fetch = fetch ?? ((url) => fetchJwks(url, options.policy, options));
  }

  /** jose's key argument for tokens of the identity provider publishing its keys at `url`. */
  resolver(url: string): KeyResolver {
    return async (header, token) => {
      const entry = this.#entry(url);
      const keySet = entry.keySet;
      if (keySet === undefined || this.#options.now() - keySet.fetchedAt > this.#options.maxAgeMs) {
        await this.#refresh(entry, url);
      }
      const current = entry.keySet;
      if (current === undefined) {
        throw entry.failure ?? new JwksUnavailableError(`the JWKS at ${url} is not available`);
      }
      try {
        return await current.resolve(header, token);
      } catch (error) {
        if (!(error instanceof errors.JWKSNoMatchingKey)) throw error;
        // A kid the set lacks: the provider may have rotated its keys. Look again (rate-limited).
        await this.#refresh(entry, url);
        if (entry.keySet === current || entry.keySet === undefined) throw error;
        return entry.keySet.resolve(header, token);
      }
    };
  }

  #entry(url: string): Entry {
    let entry = this.#entries.get(url);
    if (entry !== undefined) {
      // Most recently used last, so eviction takes the least recently used.
      this.#entries.delete(url);
    } else {
      entry = {
        keySet: undefined,
        lastAttemptAt: Number.NEGATIVE_INFINITY,
        failure: undefined,
        inflight: undefined,
      };
      while (this.#entries.size >= this.#options.maxEntries) {
        const oldest = this.#entries.keys().next();
        if (oldest.done === true) break;
        this.#entries.delete(oldest.value);
      }
    }
    this.#entries.set(url, entry);
    return entry;
  }

  /** Fetches the set again unless a fetch is under way (then waits for it) or was too recent. */
  #refresh(entry: Entry, url: string): Promise<void> {
    if (entry.inflight !== undefined) return entry.inflight;
    const now = this.#options.now();
    if (now - entry.lastAttemptAt < this.#options.cooldownMs) return Promise.resolve();
    entry.lastAttemptAt = now;
    const attempt = async () => {
      try {
        const jwks = await this.#fetch(new URL(url));
        entry.keySet = { resolve: createLocalJWKSet(jwks), fetchedAt: this.#options.now() };
        entry.failure = undefined;
      } catch (error) {
        entry.failure =
          error instanceof AddressRefusedError || error instanceof JwksUnavailableError
            ? error
            : new JwksUnavailableError(`the JWKS at ${url} is not a key set: ${String(error)}`);
      } finally {
        entry.inflight = undefined;
      }
    };
    entry.inflight = attempt();
    return entry.inflight;
  }
}

/** GETs and parses a JWKS document within the policy and limits. */
export async function fetchJwks(
  url: URL,
  policy: JwksAddressPolicy,
  limits: JwksLimits,
): Promise<JSONWebKeySet> {
  const literal = ipLiteralOf(url);
  const why =
    literal !== undefined
      ? refusal(literal, url.protocol, policy)
      : url.protocol === "http:" && !policy.allowLoopback
        ? "JWKS URLs must use https://"
        : undefined;
  if (why !== undefined) throw new AddressRefusedError(why);
  let text: string;
  try {
    text = await get(url, policy, limits);
  } catch (error) {
    if (error instanceof AddressRefusedError) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new JwksUnavailableError(`cannot fetch the JWKS at ${url.href}: ${reason}`, {
      cause: error,
    });
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    throw new JwksUnavailableError(`the JWKS at ${url.href} is not JSON`);
  }
  const keys = (document as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || !keys.every((key) => typeof key === "object" && key !== null)) {
    throw new JwksUnavailableError(`the JWKS at ${url.href} has no "keys" array of keys`);
  }
  return document as JSONWebKeySet;
}

function get(url: URL, policy: JwksAddressPolicy, limits: JwksLimits): Promise<string> {
  return new Promise((resolve, reject) => {
    const send = url.protocol === "https:" ? httpsRequest : httpRequest;
    const timer = setTimeout(
      () => request.destroy(new Error(`no answer within ${limits.timeoutMs} ms`)),
      limits.timeoutMs,
    );
    const fail = (error: Error) => {
      clearTimeout(timer);
      reject(error);
    };
    const request = send(
      url,
      {
        method: "GET",
        lookup: guardedLookup(url.protocol, policy),
        // A fresh connection to the address just checked, never a pooled one.
        agent: false,
        headers: {
          accept: "application/jwk-set+json, application/json",
          "user-agent": "backstate",
        },
      },
      (response: IncomingMessage) => {
        if (response.statusCode !== 200) {
          request.destroy();
          // Redirects included: following one would leave the checked address.
          fail(new Error(`it answered HTTP ${response.statusCode ?? "?"}`));
          return;
        }
        const declared = Number(response.headers["content-length"] ?? "0");
        if (declared > limits.maxBytes) {
          request.destroy();
          fail(new Error(`it is larger than ${limits.maxBytes} bytes`));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        response.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > limits.maxBytes) {
            request.destroy(new Error(`it is larger than ${limits.maxBytes} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        response.on("end", () => {
          clearTimeout(timer);
          resolve(Buffer.concat(chunks).toString("utf8"));
        });
        response.on("error", fail);
      },
    );
    request.on("error", fail);
    request.end();
  });
}
