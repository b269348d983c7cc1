// Browser-style timers for one vm context: numeric ids instead of Node's Timeout objects (which
// would hand machine code a host object with Node internals behind it), and callbacks that cannot
// take the sandbox down by throwing.

export type TimerFunctions = {
  setTimeout: (callback: unknown, delay?: unknown, ...args: unknown[]) => number;
  clearTimeout: (id: unknown) => void;
  setInterval: (callback: unknown, delay?: unknown, ...args: unknown[]) => number;
  clearInterval: (id: unknown) => void;
  queueMicrotask: (callback: unknown) => void;
  /**
   * Cancels every timer still armed and arms none from now on: the version is dropped, and a
   * timer left running (a setInterval at module load) would keep its context, and its code
   * running, for the rest of the process.
   */
  dispose: () => void;
};

/** `onThrow` receives whatever a callback threw; the sandbox logs it and carries on. */
export function createTimers(onThrow: (error: unknown) => void): TimerFunctions {
  const active = new Map<number, NodeJS.Timeout>();
  let nextId = 1;
  let disposed = false;

  function checkCallback(callback: unknown): asserts callback is (...args: unknown[]) => unknown {
    // Browsers also accept a string to evaluate; code from strings is not offered here.
    if (typeof callback !== "function") throw new TypeError("the callback must be a function");
  }

  function run(callback: (...args: unknown[]) => unknown, args: unknown[]): void {
    try {
      Reflect.apply(callback, undefined, args);
    } catch (error) {
      onThrow(error);
    }
  }

  function toDelay(delay: unknown): number {
    const ms = Number(delay);
    return Number.isFinite(ms) && ms > 0 ? ms : 0;
  }

  function clear(id: unknown): void {
    const key = Number(id);
    const timer = active.get(key);
    if (timer === undefined) return;
    clearTimeout(timer);
    active.delete(key);
  }

  return {
    setTimeout(callback, delay, ...args) {
      checkCallback(callback);
      const id = nextId++;
      if (disposed) return id;
      active.set(
        id,
        setTimeout(() => {
          active.delete(id);
          run(callback, args);
        }, toDelay(delay)),
      );
      return id;
    },
    clearTimeout: clear,
    setInterval(callback, delay, ...args) {
      checkCallback(callback);
      const id = nextId++;
      if (disposed) return id;
      active.set(
        id,
        setInterval(() => run(callback, args), toDelay(delay)),
      );
      return id;
    },
    clearInterval: clear,
    queueMicrotask(callback) {
      checkCallback(callback);
      if (disposed) return;
      queueMicrotask(() => run(callback, []));
    },
    dispose() {
      disposed = true;
      for (const id of [...active.keys()]) clear(id);
    },
  };
}
