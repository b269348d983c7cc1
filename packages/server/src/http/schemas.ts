// The zod schemas of the API's inputs and outputs, shared by the routes and /openapi.json.
// Inputs are strict about types and bounded in size; unknown properties are ignored, because the
// official client sends some (a migration's code, say) that a server does not need.
import { z } from "zod";
import { SCOPES } from "../auth/scopes.js";
import { MAX_KEY_TEXT_BYTES, unstorableTextProblem } from "../store/stored-text.js";

export const Name = z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, {
  message: "must be 1-128 characters of A-Z, a-z, 0-9, _ and -",
});

/** Refuses text the store could not keep as given (see store/stored-text.ts). */
function storable(maxBytes?: number) {
  return (text: string, ctx: z.RefinementCtx) => {
    const problem = unstorableTextProblem(text, maxBytes);
    if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
  };
}

/**
 * Free text a caller gives that is stored as text (names, descriptions, cursor positions):
 * no U+0000, well-formed. Bound its length where it is used.
 */
export const StoredText = z.string().superRefine(storable());

/** StoredText in a key column: at most MAX_KEY_TEXT_BYTES of UTF-8, so the key fits an index. */
export const KeyColumnText = z.string().superRefine(storable(MAX_KEY_TEXT_BYTES));

/** A JSON object (as parsed from a body: it cannot hold anything JSON cannot). */
export const JsonObjectSchema = z.record(z.string(), z.unknown());

/**
 * Long enough for every cursor a listing gives out: the longest position is an identity
 * provider's (aud, iss), up to 1,024 bytes each, as base64url JSON (about 2,800 characters for
 * ASCII ones). 16 KiB is also what Node takes of a request's headers, URL included, by default.
 */
export const CursorQuery = z.object({
  cursor: z
    .string()
    .max(16 * 1024)
    .optional(),
});

export const MachineParams = z.object({ machineName: Name });
export const InstanceParams = z.object({ machineName: Name, instanceName: Name });

export const ScopeSchema = z.enum(SCOPES);

export const EventSchema = z.union([
  z.string().min(1).max(1024),
  z.looseObject({ type: z.string().min(1).max(1024) }),
]);

const IsoDate = z.string().describe("ISO-8601 timestamp");

export const MachineVersionInfoSchema = z.object({
  id: z.string(),
  createdAt: IsoDate,
  clientInfo: z.string(),
});

export const StateSchema = z.object({
  state: z.unknown().describe("StateValue: a string, or an object of nested states"),
  publicContext: JsonObjectSchema.or(z.unknown()),
  tags: z.array(z.string()),
  done: z.boolean(),
  ts: z.number().describe("epoch ms when this state was committed; increases per instance"),
});
