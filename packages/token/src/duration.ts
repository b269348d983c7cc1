// Parses `expires.in` durations ("7d", "30m", "1.5 hours") into seconds, exactly as
// @statebacked/token did through jose 4, so tokens expire at the same moment with either package.

const SECONDS_PER_UNIT: Record<string, number> = {
  s: 1,
  m: 60,
  h: 60 * 60,
  d: 24 * 60 * 60,
  w: 7 * 24 * 60 * 60,
  y: 365.25 * 24 * 60 * 60,
};

const UNIT_ALIASES: Record<string, keyof typeof SECONDS_PER_UNIT> = {
  s: "s",
  sec: "s",
  secs: "s",
  second: "s",
  seconds: "s",
  m: "m",
  min: "m",
  mins: "m",
  minute: "m",
  minutes: "m",
  h: "h",
  hr: "h",
  hrs: "h",
  hour: "h",
  hours: "h",
  d: "d",
  day: "d",
  days: "d",
  w: "w",
  week: "w",
  weeks: "w",
  y: "y",
  yr: "y",
  yrs: "y",
  year: "y",
  years: "y",
};

const DURATION = /^(\d+|\d+\.\d+) ?([a-z]+)$/i;

/** Seconds in a duration such as "7d"; throws a TypeError naming the input when it cannot be read. */
export function parseDurationSeconds(input: string): number {
  const match = DURATION.exec(input);
  const unit = match?.[2] === undefined ? undefined : UNIT_ALIASES[match[2].toLowerCase()];
  if (match?.[1] === undefined || unit === undefined) {
    throw new TypeError(
      `expires.in must be a duration such as "30m", "12h" or "7d"; got ${JSON.stringify(input)}`,
    );
  }
  return Math.round(Number.parseFloat(match[1]) * (SECONDS_PER_UNIT[unit] ?? 0));
}
