// @backstate/cli as a library: the program (for embedding and tests), the credentials files, the
// API client the commands use, and the machine-file bundler.
export { createProgram, run } from "./program.js";
export {
  CREDENTIALS_FILE,
  backstateHome,
  credentialsPath,
  listLogins,
  loginCredentialsPath,
  readCredentials,
  writeCredentials,
  type Credentials,
} from "./credentials.js";
export { ApiClient } from "./api.js";
export type * from "./api.js";
export { buildMachine, type BuiltMachine } from "./bundle.js";
export { ApiError, CliError, EXIT_CODES } from "./errors.js";
