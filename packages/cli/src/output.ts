// Output for people and for scripts. With --json a command prints one JSON document on stdout
// and nothing else there; otherwise tables and details. Colours only when the stream is a
// terminal and neither NO_COLOR nor --no-color says otherwise. The progress indicator writes to
// stderr, and only when stderr is a terminal.
import type { Command } from "commander";
import type { StateValue } from "./api.js";
import { globalOptions } from "./connection.js";

export type Styles = {
  bold(text: string): string;
  dim(text: string): string;
  red(text: string): string;
  green(text: string): string;
  yellow(text: string): string;
  cyan(text: string): string;
};

const ansi = (open: number, close: number) => (text: string) =>
  `\x1b[${open}m${text}\x1b[${close}m`;
const COLOURED: Styles = {
  bold: ansi(1, 22),
  dim: ansi(2, 22),
  red: ansi(31, 39),
  green: ansi(32, 39),
  yellow: ansi(33, 39),
  cyan: ansi(36, 39),
};
const identity = (text: string) => text;
const PLAIN: Styles = {
  bold: identity,
  dim: identity,
  red: identity,
  green: identity,
  yellow: identity,
  cyan: identity,
};

/** Whether to colour what goes to `stream`. */
export function colourFor(
  stream: { isTTY?: boolean },
  allowed = true,
  env: NodeJS.ProcessEnv = process.env,
): boolean {
  return allowed && stream.isTTY === true && (env.NO_COLOR === undefined || env.NO_COLOR === "");
}

export class Output {
  readonly json: boolean;
  readonly style: Styles;
  readonly progress: Progress;

  constructor(options: { json: boolean; color: boolean }) {
    this.json = options.json;
    this.style = colourFor(process.stdout, options.color) ? COLOURED : PLAIN;
    this.progress = new Progress(
      process.stderr.isTTY === true,
      colourFor(process.stderr, options.color),
    );
  }

  static of(command: Command): Output {
    const options = globalOptions(command);
    return new Output({ json: options.json === true, color: options.color !== false });
  }

  /** --json: the value as one JSON document; otherwise `human()`'s text. */
  print(value: unknown, human: () => string): void {
    if (this.json) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
    else {
      const text = human();
      if (text !== "") process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
    }
  }

  /** A warning on stderr, with --json too: stdout stays clean, and it must not go unseen. */
  warn(text: string): void {
    process.stderr.write(`warning: ${text}\n`);
  }

  /** A note for people on stderr (never with --json, so scripts see clean output). */
  note(text: string): void {
    if (!this.json) process.stderr.write(`${text}\n`);
  }

  table(headers: string[], rows: string[][]): string {
    return renderTable(headers, rows, this.style);
  }

  /** `label  value` lines, labels aligned. */
  details(pairs: ReadonlyArray<readonly [string, string]>): string {
    const width = Math.max(...pairs.map(([label]) => label.length));
    return pairs
      .map(([label, value]) => {
        const [first = "", ...rest] = value.split("\n");
        const pad = " ".repeat(width + 2);
        return [
          `${this.style.bold(label.padEnd(width))}  ${first}`,
          ...rest.map((line) => pad + line),
        ].join("\n");
      })
      .join("\n");
  }
}

// Escape sequences take no room on screen.
// eslint-disable-next-line no-control-regex
const visibleLength = (text: string) => text.replace(/\x1b\[[0-9;]*m/g, "").length;

export function renderTable(headers: string[], rows: string[][], style: Styles): string {
  const widths = headers.map((header, column) =>
    Math.max(visibleLength(header), ...rows.map((row) => visibleLength(row[column] ?? ""))),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, column) =>
        column === cells.length - 1
          ? cell
          : cell + " ".repeat((widths[column] ?? 0) - visibleLength(cell)),
      )
      .join("  ")
      .trimEnd();
  return [line(headers.map((header) => style.bold(header))), ...rows.map((row) => line(row))].join(
    "\n",
  );
}

/** `2026-01-31 12:00:00Z` from an ISO date (shorter in a table than the ISO form). */
export function shortDate(iso: string | undefined): string {
  if (!iso) return "-";
  const date = new Date(iso);
  return Number.isNaN(date.getTime())
    ? iso
    : `${date.toISOString().slice(0, 19).replace("T", " ")}Z`;
}

/** The leaf states of a state value, dotted: `{a: "b", c: {d: "e"}}` → `a.b, c.d.e`. */
export function describeState(value: StateValue): string {
  const leaves: string[] = [];
  const walk = (node: StateValue, prefix: string) => {
    if (typeof node === "string") leaves.push(prefix + node);
    else {
      const entries = Object.entries(node);
      if (entries.length === 0 && prefix) leaves.push(prefix.slice(0, -1));
      for (const [key, child] of entries) walk(child, `${prefix}${key}.`);
    }
  };
  walk(value, "");
  return leaves.join(", ");
}

export function compactJson(value: unknown): string {
  return value === undefined ? "-" : JSON.stringify(value);
}

const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

const running = new Set<Progress>();

/** Clears every spinner still turning (before an error is printed). */
export function stopAllProgress(): void {
  for (const progress of running) progress.stop();
}

/** A spinner with a line of text on stderr; does nothing when stderr is not a terminal. */
export class Progress {
  private timer: NodeJS.Timeout | undefined;
  private text = "";
  private frame = 0;

  constructor(
    readonly enabled: boolean,
    private readonly colour: boolean,
  ) {}

  /** Shows `text` as the step under way (starts the spinner when needed). */
  step(text: string): void {
    if (!this.enabled) return;
    this.text = text;
    this.render();
    running.add(this);
    this.timer ??= setInterval(() => {
      this.frame = (this.frame + 1) % FRAMES.length;
      this.render();
    }, 80);
  }

  /** Ends the spinner, leaving a ✔ line with `text` (or nothing). */
  done(text?: string): void {
    if (!this.enabled) return;
    this.clear();
    if (text !== undefined) {
      const mark = this.colour ? COLOURED.green("✔") : "✔";
      process.stderr.write(`${mark} ${text}\n`);
    }
  }

  /** Ends the spinner without a trace (before an error is printed). */
  stop(): void {
    if (this.enabled) this.clear();
  }

  private render(): void {
    const spinner = FRAMES[this.frame] ?? "";
    process.stderr.write(`\r\x1b[2K${this.colour ? COLOURED.cyan(spinner) : spinner} ${this.text}`);
  }

  private clear(): void {
    if (!running.delete(this)) return;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    process.stderr.write("\r\x1b[2K");
  }
}

/** `12.3 kB` */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  if (bytes < 1_000_000) return `${(bytes / 1000).toFixed(1)} kB`;
  return `${(bytes / 1_000_000).toFixed(2)} MB`;
}
