// `globalThis.__statebacked_rt`, which @statebacked/machine's helpers call. Persistent child
// instances arrive with their own issue; until then spawning one fails with a clear message.

export function installStateBackedRuntime(): void {
  const notYet = () => {
    throw new Error("persistent child instances are not supported yet by Backstate");
  };
  Object.defineProperty(globalThis, "__statebacked_rt", {
    value: Object.freeze({ spawn: notYet }),
    writable: false,
    configurable: false,
    enumerable: false,
  });
}
