// Backstate in one script: run it against a running server (`npm start` in another terminal).
//
//   node examples/quickstart.mjs [path/to/credentials.json]
//
// The credentials file is the one `backstate serve` writes (default .backstate/credentials.json,
// or set BACKSTATE_CREDENTIALS). The script deploys a `toggle` machine, creates a key, signs an
// end-user token with it and drives that user's instance. It is safe to run again: each run
// adds a version and a key, and toggles the same instance once more.
import { readFileSync } from "node:fs";
import { StateBackedClient, errors } from "@statebacked/client";
import { signToken } from "@backstate/token";

const credentialsPath =
  process.argv[2] ?? process.env.BACKSTATE_CREDENTIALS ?? ".backstate/credentials.json";
let credentials;
try {
  credentials = JSON.parse(readFileSync(credentialsPath, "utf8"));
} catch (error) {
  console.error(`cannot read ${credentialsPath} (${error.message}): is \`npm start\` running?`);
  process.exit(1);
}
const { apiUrl, orgId, adminToken } = credentials;

// 1. As the admin: a machine, its code, and a key for your app's backend.
const admin = new StateBackedClient(adminToken, { apiHost: apiUrl, orgId });

try {
  await admin.machines.create("toggle");
} catch (error) {
  if (!(error instanceof errors.ConflictError)) throw error; // it exists from an earlier run
}

// A machine version is one ES module: the machine as its default export, plus the authorizers
// that decide every read and write. Here each user may use only the instance named after them.
const code = `
import { createMachine } from "xstate";

export default createMachine({
  id: "toggle",
  initial: "off",
  states: {
    off: { on: { toggle: "on" } },
    on: { on: { toggle: "off" } },
  },
});

export const allowRead = ({ machineInstanceName, authContext }) =>
  machineInstanceName === authContext.sub;
export const allowWrite = ({ machineInstanceName, authContext }) =>
  machineInstanceName === authContext.sub;
`;
const { machineVersionId } = await admin.machineVersions.create("toggle", {
  code,
  clientInfo: "quickstart",
  makeCurrent: true,
});
console.log(`deployed toggle version ${machineVersionId}`);

const key = await admin.keys.create({ name: "quickstart", use: "production" });
console.log(`created key ${key.id}`);

// 2. In your backend: sign a token for the signed-in user with the key (keep the key secret).
const userToken = await signToken(
  { stateBackedKeyId: key.id, stateBackedSecretKey: key.key },
  { sub: "alice" },
  { expires: { in: "1h" } },
);

// 3. In your app: a client with the user's token creates, drives and reads their instance.
const alice = new StateBackedClient(userToken, { apiHost: apiUrl });

const created = await alice.machineInstances.getOrCreate("toggle", "alice", {});
console.log(`alice's toggle is ${created.state}`);

const sent = await alice.machineInstances.sendEvent("toggle", "alice", { event: "toggle" });
console.log(`after "toggle" it is ${sent.state}`);

const read = await alice.machineInstances.get("toggle", "alice");
console.log(`read back: ${read.state}`);
