// Claims only the server may put in an authContext. State Backed hands a receiving instance's
// allowWrite `{ stateBackedSender: { machineName, machineInstanceName } }` for events another
// instance sends it, as a service-verified, unforgeable claim (behavior.md §13): machines written
// for it admit such events on that claim alone. An authContext from outside (a token's act, the
// act-as header, a token exchange's mappings) that carried it would pass for another instance.

/** The claim naming the instance an event between instances comes from. */
export const SENDER_CLAIM = "stateBackedSender";

/** Why `authContext` cannot come from a caller, as a sentence about `what`, or undefined. */
export function reservedClaimProblem(authContext: object, what: string): string | undefined {
  if (!Object.hasOwn(authContext, SENDER_CLAIM)) return undefined;
  return (
    `${what} cannot carry ${SENDER_CLAIM}: only the server sets it, on events one instance ` +
    "sends another"
  );
}
