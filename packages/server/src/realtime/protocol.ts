// The /rt wire protocol (State Backed's): JSON text frames. Clients subscribe to instances by
// name under a requestId of their choosing; the server pushes `instance-update`s and `error`s.
import { z } from "zod";
import { Name } from "../http/schemas.js";
import type { WireState } from "../http/wire.js";

const RequestId = z.string().min(1).max(128);

export const ClientMessage = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("subscribe-to-instance"),
    requestId: RequestId,
    machineName: Name,
    machineInstanceName: Name,
  }),
  z.object({
    type: z.literal("unsubscribe-from-instance"),
    requestId: RequestId,
    machineName: Name.optional(),
    machineInstanceName: Name.optional(),
  }),
  z.object({ type: z.literal("ping") }),
]);

export type ClientMessage = z.infer<typeof ClientMessage>;

export type InstanceUpdateMessage = {
  type: "instance-update";
  machineName: string;
  machineInstanceName: string;
} & WireState;

export type ErrorMessage = {
  type: "error";
  requestId?: string;
  status: number;
  code?: string;
  error?: string;
};

export type ServerMessage = InstanceUpdateMessage | ErrorMessage | { type: "pong" };

/** Parses one inbound frame; `undefined` with the reason when it is not a message we accept. */
export function parseClientMessage(
  data: string,
): { message: ClientMessage } | { problem: string; requestId?: string } {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return { problem: "the message is not JSON" };
  }
  const parsed = ClientMessage.safeParse(value);
  if (parsed.success) return { message: parsed.data };
  const requestId = (value as { requestId?: unknown } | null)?.requestId;
  const issue = parsed.error.issues[0];
  return {
    problem: `invalid message: ${issue ? `${issue.path.join(".") || "message"}: ${issue.message}` : "unknown"}`,
    ...(typeof requestId === "string" && requestId.length <= 128 ? { requestId } : {}),
  };
}
