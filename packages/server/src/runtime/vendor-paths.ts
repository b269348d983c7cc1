// Where the build puts the files a sandbox needs (see scripts/build-sandbox.js).
import { fileURLToPath } from "node:url";

/** The adapter script bundle, evaluated in every machine version's context. */
export const ADAPTER_PATH = fileURLToPath(new URL("../../vendor/adapter.js", import.meta.url));
