// @backstate/cli as a library: the program (for embedding and tests) and the credentials file.
export { createProgram, run } from "./program.js";
export {
  CREDENTIALS_FILE,
  credentialsPath,
  readCredentials,
  writeCredentials,
  type Credentials,
} from "./credentials.js";
