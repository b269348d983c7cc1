// Reads a request body within a size bound, and parses JSON the way the official clients send
// it: empty bodies (with a JSON content type) mean "no body", and JSON sent as text/plain or
// with no content type at all is still JSON.
import type { IncomingMessage } from "node:http";
import { BackstateError, InvalidParameterError } from "../errors.js";

/**
 * Where a body comes from: node's own request when the app runs on node:http (reading it directly
 * skips building a web ReadableStream for every request), else the web Request.
 */
export type BodySource = { request: Request; incoming?: IncomingMessage | undefined };

export async function readBodyBytes(source: BodySource, maxBytes: number): Promise<Uint8Array> {
  const { request, incoming } = source;
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > maxBytes) throw tooLarge(maxBytes);
  const stream = (incoming ?? request.body) as AsyncIterable<Uint8Array> | null;
  if (!stream) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += chunk.byteLength;
    if (size > maxBytes) throw tooLarge(maxBytes);
    chunks.push(chunk);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

/** The parsed JSON body, or undefined for an empty one. */
export async function readJsonBody(source: BodySource, maxBytes: number): Promise<unknown> {
  const bytes = await readBodyBytes(source, maxBytes);
  if (bytes.byteLength === 0) return undefined;
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new InvalidParameterError("body", "the body is not UTF-8 text");
  }
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new InvalidParameterError("body", "the body is not valid JSON");
  }
}

function tooLarge(maxBytes: number): BackstateError {
  return new BackstateError("payload-too-large", `the body is larger than ${maxBytes} bytes`);
}
