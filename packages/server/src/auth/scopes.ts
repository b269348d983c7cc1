// The scopes a key or a session can hold, the presets `POST /keys` accepts, and what each org
// role grants. Every scope check in the API names one of these.
import type { OrgRole } from "../store/store.js";

export const SCOPES = [
  "events.write",
  "events.read",
  "state.read",
  "instances.read",
  "instances.write",
  "instances.admin",
  "machines.read",
  "machines.write",
  "machines.admin",
  "machine-versions.read",
  "machine-versions.write",
  "analytics.read",
  "org.read",
  "org.write",
  "org.keys.write",
  "org-members.write",
  "logs.read",
  "tokens.admin",
  // Missing from the published enum, yet required by the index query and accepted by smply.
  "indexes.read",
] as const;

export type Scope = (typeof SCOPES)[number];

export const KEY_PRESETS = {
  production: ["events.write", "state.read", "instances.write", "indexes.read"],
  ci: ["machines.read", "machines.write", "machine-versions.read", "machine-versions.write"],
} as const satisfies Record<string, readonly Scope[]>;

export type KeyPreset = keyof typeof KEY_PRESETS;

const ADMINISTRATION: ReadonlySet<Scope> = new Set([
  "org.write",
  "org.keys.write",
  "org-members.write",
]);
const isAdminScope = (scope: Scope) => scope.endsWith(".admin") || ADMINISTRATION.has(scope);

/** admin: everything; write: everything but administration; read: the `*.read` scopes. */
export const ROLE_SCOPES: Record<OrgRole, ReadonlySet<Scope>> = {
  admin: new Set(SCOPES),
  write: new Set(SCOPES.filter((scope) => !isAdminScope(scope))),
  read: new Set(SCOPES.filter((scope) => scope.endsWith(".read"))),
};

export function isScope(value: string): value is Scope {
  return (SCOPES as readonly string[]).includes(value);
}
