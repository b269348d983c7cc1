// Machine code's fetch. Outbound HTTP is a feature (machines call external APIs), but the sandbox
// runs inside the operator's network: without a guard, any tenant could fetch the Backstate server
// itself on 127.0.0.1, cloud metadata credentials at 169.254.169.254, or anything on 10.x. So
// fetch is undici's, with a dispatcher whose connections go to public addresses only
// (net/guarded-connector.ts), unless the operator allows private ones.
//
// Node's own fetch takes no custom connector, so the sandbox bundles undici; its Headers, Request,
// Response and FormData are then the context's globals too, since undici's fetch recognizes only
// its own classes (a Request from Node's built-in undici would be read as a URL string).
import { Agent, FormData, Headers, Request, Response, fetch as undiciFetch } from "undici";
import { guardedConnector } from "../../net/guarded-connector.js";
import { hardenThrown } from "./harden.js";

export type SandboxNetworkOptions = {
  /** Machine code may fetch from loopback, private and link-local addresses too. */
  allowPrivateNetwork: boolean;
};

export type SandboxFetch = (input: unknown, init?: unknown) => Promise<Response>;

/** The classes that go with the fetch below, offered to machine code as globals. */
export const FETCH_CLASSES = { Headers, Request, Response, FormData } as const;

/**
 * The fetch function machine code gets (wrapped by globals.ts), with its own connection pool.
 * Whatever dispatcher the machine names in `init` or in a Request it built, this one is used.
 */
export function createSandboxFetch(options: SandboxNetworkOptions): SandboxFetch {
  const dispatcher = options.allowPrivateNetwork
    ? new Agent()
    : new Agent({
        connect: guardedConnector({
          advice:
            "machine code may fetch from public addresses only, unless the operator allows private ones",
        }),
      });
  return (input, init) => {
    const withOurs = withDispatcher(init, dispatcher);
    if (withOurs === undefined) {
      return Promise.reject(new TypeError("fetch: the second argument must be an object"));
    }
    return undiciFetch(input as Parameters<typeof undiciFetch>[0], withOurs).catch(
      (error: unknown) => {
        // Node's DNS and connection errors are of classes no import leads to (harden.ts).
        hardenThrown(error);
        throw error;
      },
    );
  };
}

/**
 * `init` as undici reads it, with `dispatcher` always ours. A proxy rather than a copy: undici
 * reads each member once, through getters and the prototype chain, as the fetch standard says;
 * a copy would read them earlier and only the own enumerable ones.
 */
function withDispatcher(init: unknown, dispatcher: Agent): RequestInitWithDispatcher | undefined {
  if (init === undefined || init === null) return { dispatcher };
  if (typeof init !== "object" && typeof init !== "function") return undefined;
  return new Proxy(init, {
    get: (target, key): unknown => (key === "dispatcher" ? dispatcher : Reflect.get(target, key)),
  });
}

type RequestInitWithDispatcher = NonNullable<Parameters<typeof undiciFetch>[1]>;
