// `backstate instances create|get|list|send-event|pause|resume`. With --auth-context the admin
// acts as that end user (x-statebacked-act): the machine's allowRead/allowWrite see it as the
// authContext. Without it they see the admin's own claims ({ sub: "usr_…" }); `get` without it
// reads the administrative view (whole context, status, version) and runs no authorizer.
import { Option, type Command } from "commander";
import type { AdminState, State } from "../api.js";
import { compactJson, describeState, shortDate, type Output } from "../output.js";
import { parseEvent, parseJsonObject, parseVersionId, type JsonObject } from "../parse.js";
import {
  apiAction,
  authContextOption,
  examples,
  instanceOption,
  machineOption,
  type AuthContextOptions,
} from "./common.js";

type Target = { machine: string; instance: string };

export function registerInstances(program: Command): void {
  const instances = program
    .command("instances")
    .description("create machine instances, send them events, read their state");

  examples(
    instances
      .command("create")
      .description("create an instance (allowWrite sees an initialization) and print its state")
      .addOption(machineOption())
      .addOption(instanceOption())
      .addOption(authContextOption())
      .addOption(
        new Option("-c, --context <json>", "the initial context, a JSON object").argParser(
          parseJsonObject,
        ),
      )
      .addOption(
        new Option(
          "--machine-version <id>",
          "run this machine version (default: the current one)",
        ).argParser(parseVersionId),
      )
      .action(
        apiAction<Target & AuthContextOptions & { context?: JsonObject; machineVersion?: string }>(
          async ({ api, out }, options) => {
            const state = await api.createInstance(
              options.machine,
              {
                slug: options.instance,
                ...(options.context !== undefined ? { context: options.context } : {}),
                ...(options.machineVersion !== undefined
                  ? { machineVersionId: options.machineVersion }
                  : {}),
              },
              options.authContext,
            );
            out.print(
              state,
              () => `created ${options.machine}/${options.instance}\n${describe(out, state)}`,
            );
          },
        ),
      ),
    [
      `backstate instances create --machine toggle --instance alice --auth-context '{"sub":"alice"}'`,
    ],
  );

  examples(
    instances
      .command("get")
      .description(
        "read an instance: the administrative view, or with --auth-context what that user may read",
      )
      .addOption(machineOption())
      .addOption(instanceOption())
      .addOption(authContextOption())
      .action(
        apiAction<Target & AuthContextOptions>(async ({ api, out }, options) => {
          if (options.authContext !== undefined) {
            const state = await api.getInstance(
              options.machine,
              options.instance,
              options.authContext,
            );
            out.print(state, () => describe(out, state));
            return;
          }
          const state = await api.getInstanceAdmin(options.machine, options.instance);
          out.print(state, () => describeAdmin(out, state));
        }),
      ),
    [
      "backstate instances get --machine toggle --instance alice",
      `backstate instances get -m toggle -i alice --auth-context '{"sub":"alice"}' --json`,
    ],
  );

  instances
    .command("list")
    .description("list a machine's instances")
    .addOption(machineOption())
    .action(
      apiAction<{ machine: string }>(async ({ api, out }, options) => {
        const list = await api.listInstances(options.machine);
        out.print({ instances: list }, () =>
          list.length === 0
            ? `machine ${options.machine} has no instances yet`
            : out.table(
                ["NAME", "STATUS", "VERSION", "CREATED"],
                list.map((instance) => [
                  out.style.cyan(instance.slug),
                  status(out, instance.status),
                  instance.machineVersion.id,
                  shortDate(instance.createdAt),
                ]),
              ),
        );
      }),
    );

  examples(
    instances
      .command("send-event")
      .description("send an event (allowWrite decides) and print the state it settles in")
      .addOption(machineOption())
      .addOption(instanceOption())
      .addOption(
        new Option(
          "-e, --event <event>",
          'the event: its type, or a JSON object with a type, e.g. \'{"type":"add","n":2}\'',
        )
          .argParser(parseEvent)
          .makeOptionMandatory(),
      )
      .addOption(authContextOption())
      .action(
        apiAction<Target & AuthContextOptions & { event: string | JsonObject }>(
          async ({ api, out }, options) => {
            const state = await api.sendEvent(
              options.machine,
              options.instance,
              options.event,
              options.authContext,
            );
            out.print(state, () => describe(out, state));
          },
        ),
      ),
    [
      `backstate instances send-event -m toggle -i alice -e toggle --auth-context '{"sub":"alice"}'`,
      `backstate instances send-event -m counter -i c1 -e '{"type":"add","n":2}'`,
    ],
  );

  for (const [name, wanted, description] of [
    ["pause", "paused", "pause an instance: it refuses every event (409) until resumed"],
    ["resume", "running", "resume a paused instance"],
  ] as const) {
    instances
      .command(name)
      .description(description)
      .addOption(machineOption())
      .addOption(instanceOption())
      .action(
        apiAction<Target>(async ({ api, out }, options) => {
          await api.setInstanceStatus(options.machine, options.instance, wanted);
          out.print(
            { machine: options.machine, instance: options.instance, status: wanted },
            () => `${options.machine}/${options.instance} is ${status(out, wanted)}`,
          );
        }),
      );
  }
}

function status(out: Output, value: "running" | "paused"): string {
  return value === "running" ? out.style.green(value) : out.style.yellow(value);
}

function describe(out: Output, state: State): string {
  return out.details([
    ["state", out.style.cyan(describeState(state.state))],
    ["public context", compactJson(state.publicContext)],
    ["tags", state.tags.length > 0 ? state.tags.join(", ") : "-"],
    ["done", state.done ? "yes" : "no"],
  ]);
}

function describeAdmin(out: Output, state: AdminState): string {
  return out.details([
    ["state", out.style.cyan(describeState(state.state))],
    ["status", status(out, state.status)],
    ["context", JSON.stringify(state.context, null, 2) ?? "-"],
    ["tags", state.tags.length > 0 ? state.tags.join(", ") : "-"],
    ["done", state.done ? "yes" : "no"],
    [
      "version",
      `${state.machineVersion.id}${state.machineVersion.clientInfo ? ` (${state.machineVersion.clientInfo})` : ""}`,
    ],
    ...(state.desiredMachineVersion
      ? ([["desired version", state.desiredMachineVersion.id]] as const)
      : []),
    ["created", shortDate(state.createdAt)],
  ]);
}
