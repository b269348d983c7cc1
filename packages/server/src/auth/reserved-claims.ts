// Claims only the server may put in an authContext. State Backed hands a receiving instance's
// allowWrite `{ stateBackedSender: { machineName, machineInstanceName } }` for events another
// instance sends it, as a service-verified, unforgeable claim (behavior.md §13): machines written
// for it admit such events on that claim alone. An authContext from outside (a token's act, the
// act-as header, a token exchange's mappings) that carried it would pass for another instance.
//
// Nor may it carry a key named `__proto__`, at any depth. JSON keeps such a key as data, but an
// authorizer that copies its argument by assignment (Object.assign, a for…in copy, most merge
// helpers) turns it into the copy's prototype, and `{"__proto__": {"stateBackedSender": …}}`
// then reads as the claim itself.
import { holdsProtoKey } from "../runtime/json-check.js";

/** The claim naming the instance an event between instances comes from. */
export const SENDER_CLAIM = "stateBackedSender";

/** Why `authContext` cannot come from a caller, as a sentence about `what`, or undefined. */
export function reservedClaimProblem(authContext: object, what: string): string | undefined {
  if (Object.hasOwn(authContext, SENDER_CLAIM)) {
    return (
      `${what} cannot carry ${SENDER_CLAIM}: only the server sets it, on events one instance ` +
      "sends another"
    );
  }
  if (holdsProtoKey(authContext)) {
    return `${what} cannot hold a key named __proto__: copied by assignment, it would set a prototype`;
  }
  return undefined;
}
