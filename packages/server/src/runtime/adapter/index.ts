// The adapter script's entry: evaluated (as an IIFE bundle) inside each machine version's vm
// context before the machine module. It defines the one-shot install hook the sandbox calls.
import type { AdapterInstall, AdapterHandler } from "../sandbox-contract.js";
import type { AdapterNotification } from "../adapter-protocol.js";
import { createHandler } from "./handler.js";
import { installStateBackedRuntime } from "./statebacked-rt.js";

const install: AdapterInstall = (namespace, notify): AdapterHandler => {
  installStateBackedRuntime();
  const send = (notification: AdapterNotification) => notify(JSON.stringify(notification));
  return createHandler(namespace, send);
};

(globalThis as { __backstate_install?: AdapterInstall }).__backstate_install = install;
