// @backstate/token: sign and verify end-user tokens; a drop-in for @statebacked/token.
export { signToken, DEFAULT_AUDIENCE } from "./sign.js";
export { verifyToken, checkTimeClaims } from "./verify.js";
export { generateKey } from "./generate-key.js";
export { TokenError, type TokenErrorCode } from "./errors.js";
export type * from "./types.js";
