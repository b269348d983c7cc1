// `backstate machines create|list|get`, and `machine-versions create|list|check`: machine
// definitions and their versions. A machine file is bundled and checked before anything is sent,
// so a bad file leaves nothing behind on the server (not even the machine); a machine made for a
// first version the server refuses is deleted again.
import { writeFileSync } from "node:fs";
import { Option, type Command } from "commander";
import type { ApiClient } from "../api.js";
import { buildMachine, type BuiltMachine } from "../bundle.js";
import { CliError, EXIT_USAGE } from "../errors.js";
import { formatBytes, shortDate, type Output } from "../output.js";
import { parseFile, parseVersionReference } from "../parse.js";
import { apiAction, examples, localAction, machineOption } from "./common.js";

const fileOption = () =>
  new Option(
    "-f, --file <file>",
    "the machine file (.ts or .js): bundled with esbuild, XState inlined",
  ).argParser(parseFile);
const referenceOption = () =>
  new Option(
    "-r, --version-reference <ref>",
    "your name for this version, such as a git commit (the API's clientInfo)",
  ).argParser(parseVersionReference);

export function registerMachines(program: Command): void {
  const machines = program
    .command("machines")
    .description("create, list and read machine definitions");

  examples(
    machines
      .command("create")
      .description(
        "create a machine; with --file, also upload its first version and make it current",
      )
      .addOption(machineOption())
      .addOption(fileOption())
      .addOption(referenceOption())
      .action(
        apiAction<{ machine: string; file?: string; versionReference?: string }>(
          async ({ api, out }, options) => {
            const built = options.file ? await buildMachine(options.file, out.progress) : undefined;
            out.progress.step(`Creating machine ${options.machine}`);
            await api.createMachine(options.machine);
            const version = built
              ? await uploadVersion(api, out, options.machine, built, {
                  makeCurrent: true,
                  clientInfo: options.versionReference,
                }).catch((error: unknown) => undoMachine(api, out, options.machine, error))
              : undefined;
            out.progress.stop();
            out.print(
              {
                machine: options.machine,
                ...(version && built ? versionReport(version, built, true) : {}),
              },
              () =>
                version && built
                  ? `created machine ${options.machine}\n${describeVersion(out, version, built, true)}`
                  : `created machine ${options.machine}\n` +
                    out.style.dim(
                      `upload its code with: backstate machine-versions create --machine ${options.machine} --file FILE`,
                    ),
            );
          },
        ),
      ),
    [
      "backstate machines create --machine toggle --file ./toggle.ts",
      "backstate machines create --machine toggle   # no code yet",
    ],
  );

  machines
    .command("list")
    .description("list the org's machines with their current versions")
    .action(
      apiAction(async ({ api, out }) => {
        const list = await api.listMachines();
        out.print({ machines: list }, () =>
          list.length === 0
            ? "no machines yet: create one with `backstate machines create --machine NAME --file FILE`"
            : out.table(
                ["NAME", "CURRENT VERSION", "REFERENCE", "CREATED"],
                list.map((machine) => [
                  out.style.cyan(machine.slug),
                  machine.currentVersion?.id ?? out.style.dim("(none)"),
                  machine.currentVersion?.clientInfo || "-",
                  shortDate(machine.createdAt),
                ]),
              ),
        );
      }),
    );

  examples(
    machines
      .command("get")
      .description("read a machine: its current version and indexes")
      .addOption(machineOption())
      .action(
        apiAction<{ machine: string }>(async ({ api, out }, options) => {
          const machine = await api.getMachine(options.machine);
          out.print({ machine: { slug: options.machine, ...machine } }, () =>
            out.details([
              ["machine", out.style.cyan(options.machine)],
              ["created", shortDate(machine.createdAt)],
              ["current version", machine.currentVersion?.id ?? "(none)"],
              ["reference", machine.currentVersion?.clientInfo || "-"],
              ["indexes", machine.indexes.length > 0 ? machine.indexes.join(", ") : "-"],
            ]),
          );
        }),
      ),
    ["backstate machines get --machine toggle --json"],
  );
}

export function registerMachineVersions(program: Command): void {
  const versions = program
    .command("machine-versions")
    .description("upload, list and check versions of a machine's code");

  examples(
    versions
      .command("create")
      .description("bundle a machine file, check it, and upload it as a new version")
      .addOption(machineOption())
      .addOption(fileOption().makeOptionMandatory())
      .option("-c, --make-current", "new instances use this version from now on", false)
      .addOption(referenceOption())
      .action(
        apiAction<{
          machine: string;
          file: string;
          makeCurrent: boolean;
          versionReference?: string;
        }>(async ({ api, out }, options) => {
          const built = await buildMachine(options.file, out.progress);
          const version = await uploadVersion(api, out, options.machine, built, {
            makeCurrent: options.makeCurrent,
            clientInfo: options.versionReference,
          });
          out.progress.stop();
          out.print(
            { machine: options.machine, ...versionReport(version, built, options.makeCurrent) },
            () => describeVersion(out, version, built, options.makeCurrent),
          );
        }),
      ),
    [
      "backstate machine-versions create --machine toggle --file ./toggle.ts --make-current",
      "backstate machine-versions create -m toggle -f ./toggle.ts -r $(git rev-parse --short HEAD)",
    ],
  );

  versions
    .command("list")
    .description("list a machine's versions, oldest first; * marks the current one")
    .addOption(machineOption())
    .action(
      apiAction<{ machine: string }>(async ({ api, out }, options) => {
        const [list, machine] = await Promise.all([
          api.listVersions(options.machine),
          api.getMachine(options.machine),
        ]);
        const current = machine.currentVersion?.id;
        out.print({ versions: list, currentVersionId: current ?? null }, () =>
          list.length === 0
            ? `machine ${options.machine} has no versions yet`
            : out.table(
                ["", "VERSION", "REFERENCE", "CREATED"],
                list.map((version) => [
                  version.id === current ? out.style.green("*") : "",
                  version.id,
                  version.clientInfo || "-",
                  shortDate(version.createdAt),
                ]),
              ),
        );
      }),
    );

  examples(
    versions
      .command("check")
      .description("bundle and check a machine file without uploading it (no server needed)")
      .addOption(fileOption().makeOptionMandatory())
      .option("-o, --out <file>", "also write the bundle (what would be uploaded, unzipped) here")
      .action(
        localAction<{ file: string; out?: string }>(async (out, options) => {
          const built = await buildMachine(options.file, out.progress);
          if (options.out !== undefined) writeBundle(options.out, built.code);
          out.progress.stop();
          out.print(
            {
              file: options.file,
              xstate: built.xstate,
              machineId: built.machineId ?? null,
              exports: built.exports,
              bytes: built.bytes,
              gzippedBytes: built.gzippedBytes,
              ...(options.out !== undefined ? { out: options.out } : {}),
            },
            () =>
              out.details([
                ["file", options.file],
                ["xstate", xstateText(built)],
                ["exports", built.exports.join(", ")],
                [
                  "size",
                  `${formatBytes(built.bytes)} (${formatBytes(built.gzippedBytes)} gzipped)`,
                ],
                ...(options.out !== undefined ? ([["bundle", options.out]] as const) : []),
              ]),
          );
        }),
      ),
    ["backstate machine-versions check --file ./toggle.ts"],
  );
}

async function uploadVersion(
  api: ApiClient,
  out: Output,
  machine: string,
  built: BuiltMachine,
  options: { makeCurrent: boolean; clientInfo: string | undefined },
): Promise<string> {
  const { machineVersionId } = await api.createVersion(machine, built.gzipped, options, (step) => {
    if (step === "provision") out.progress.step(`Creating a version of ${machine}`);
    else if (step === "upload") {
      out.progress.step(`Uploading ${formatBytes(built.gzippedBytes)} (gzipped)`);
    } else out.progress.step("Finalizing: the server loads and checks the bundle");
  });
  return machineVersionId;
}

/**
 * The machine was made for a first version the server then refused (it checks more than the
 * local check can, and may fail on the way): the machine is deleted again, so that the command
 * fails as a whole and can be run again. Rethrows the version's error.
 */
async function undoMachine(
  api: ApiClient,
  out: Output,
  machine: string,
  error: unknown,
): Promise<never> {
  out.progress.stop();
  try {
    await api.deleteMachine(machine);
    out.note(`machine ${machine} was deleted again: its first version was not made`);
  } catch (undoError) {
    const why = undoError instanceof Error ? undoError.message : String(undoError);
    out.warn(
      `machine ${machine} was made but its first version was not, and deleting it failed ` +
        `(${why}): upload a version with \`backstate machine-versions create\`, or delete it`,
    );
  }
  throw error;
}

function versionReport(versionId: string, built: BuiltMachine, current: boolean) {
  return {
    machineVersionId: versionId,
    current,
    xstate: built.xstate,
    bytes: built.bytes,
    gzippedBytes: built.gzippedBytes,
  };
}

function xstateText(built: BuiltMachine): string {
  return `v${built.xstate.major}${built.xstate.version ? ` (${built.xstate.version})` : ""}`;
}

function describeVersion(
  out: Output,
  versionId: string,
  built: BuiltMachine,
  current: boolean,
): string {
  return (
    `version ${out.style.cyan(versionId)}${current ? " (current)" : ""}: XState ${xstateText(built)}, ` +
    `${formatBytes(built.bytes)} (${formatBytes(built.gzippedBytes)} gzipped)`
  );
}

/** Writes --out; a path that cannot be written (no such folder, no permission) is a bad value. */
function writeBundle(path: string, code: string): void {
  try {
    writeFileSync(path, code);
  } catch (error) {
    throw new CliError(
      `cannot write the bundle to ${path}: ${(error as Error).message}`,
      EXIT_USAGE,
    );
  }
}
