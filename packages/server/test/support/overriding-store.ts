// A store with some of its methods replaced: a store that fails, slows down or counts, for tests of
// what the engine does then. Every other method is the store's own.
import type { Store } from "../../src/store/store.js";

/** `store`, answering each method named in `overrides` with the override instead. */
export function overriding(store: Store, overrides: Partial<Store>): Store {
  return new Proxy(store, {
    get(target, property) {
      if (Object.hasOwn(overrides, property)) return overrides[property as keyof Store];
      const value = Reflect.get(target, property, target) as unknown;
      // The store's methods use its private fields: called on the store, not on the proxy.
      return typeof value === "function"
        ? (value as (...args: unknown[]) => unknown).bind(target)
        : value;
    },
  });
}
