// Flag value parsers shared by commands: each answers the parsed value or throws commander's
// InvalidArgumentError, which commander reports next to the flag (or environment variable).
import { InvalidArgumentError } from "commander";

export function parsePort(value: string): number {
  const port = /^\s*\d{1,5}\s*$/.test(value) ? Number(value) : NaN;
  if (!(port >= 0 && port <= 65535)) {
    throw new InvalidArgumentError("Expected a port number from 0 to 65535 (0: any free port).");
  }
  return port;
}

export function parseHost(value: string): string {
  const host = value.trim();
  if (host === "" || /\s/.test(host)) {
    throw new InvalidArgumentError("Expected a host name or IP address, e.g. 127.0.0.1.");
  }
  return host;
}

export function parsePath(value: string): string {
  if (value.trim() === "") throw new InvalidArgumentError("Expected a folder path.");
  return value;
}

export function parseHttpUrl(value: string): string {
  let url: URL | undefined;
  try {
    url = new URL(value.trim());
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:") || url.search || url.hash) {
    throw new InvalidArgumentError("Expected an http(s) URL, e.g. https://backstate.example.com.");
  }
  return url.href.replace(/\/+$/, "");
}
