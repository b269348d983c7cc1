// The confirmation the official client sends with irreversible deletes: a literal
// `dangerDataWillBeDeletedForever: true` and base64url(HMAC-SHA256(key = machine name, message)).
import { createHmac, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import { InvalidParameterError } from "../errors.js";

export function dangerBody<F extends string>(field: F) {
  return z.object({
    dangerDataWillBeDeletedForever: z.unknown(),
    [field]: z.unknown(),
  } as Record<"dangerDataWillBeDeletedForever" | F, z.ZodUnknown>);
}

export function checkDeletionConfirmed(
  body: Record<string, unknown>,
  field: string,
  machineName: string,
  message: string,
): void {
  if (body.dangerDataWillBeDeletedForever !== true) {
    throw new InvalidParameterError(
      "dangerDataWillBeDeletedForever",
      "set dangerDataWillBeDeletedForever to true to confirm the data is deleted forever",
    );
  }
  const expected = Buffer.from(
    createHmac("sha256", machineName).update(message).digest("base64url"),
  );
  const given = Buffer.from(typeof body[field] === "string" ? body[field] : "");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new InvalidParameterError(field, `${field} does not match the name being deleted`);
  }
}
