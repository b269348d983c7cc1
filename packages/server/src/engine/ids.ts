// Identifiers the server mints: a prefix and 128 random bits in base64url, as State Backed's were.
import { randomBytes } from "node:crypto";

export type IdGenerator = (prefix: "org" | "ver" | "usr" | "mig" | "ses") => string;

export const randomIds: IdGenerator = (prefix) =>
  `${prefix}_${randomBytes(16).toString("base64url")}`;
