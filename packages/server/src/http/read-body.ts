// Reads a request body within a size bound, and parses JSON the way the official clients send
// it: empty bodies (with a JSON content type) mean "no body", and JSON sent as text/plain or
// with no content type at all is still JSON.
import type { IncomingMessage } from "node:http";
import { BackstateError, InvalidParameterError } from "../errors.js";
import { callerNestingProblem, holdsProtoKey } from "../runtime/json-check.js";

/**
 * The body's bytes, refused past `maxBytes`. Read with stream events rather than `for await`:
 * the async iterator cost about 3% of a loaded node's main thread, on every event sent. A refusal
 * leaves the rest of the body unread; the 413 closes the connection (api.ts).
 */
export function readBodyBytes(incoming: IncomingMessage, maxBytes: number): Promise<Uint8Array> {
  const declared = Number(incoming.headers["content-length"] ?? "0");
  if (declared > maxBytes) return Promise.reject(tooLarge(maxBytes));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = () => {
      incoming.off("data", onData);
      incoming.off("end", onEnd);
      incoming.off("error", onCutOff);
      incoming.off("close", onCutOff);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size <= maxBytes) return void chunks.push(chunk);
      stop();
      incoming.pause();
      reject(tooLarge(maxBytes));
    };
    const onEnd = () => {
      stop();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    };
    // The client went away mid-body: a 400 nobody reads, not an internal error in the log.
    const onCutOff = () => {
      stop();
      reject(new InvalidParameterError("body", "the request body was cut off"));
    };
    if (incoming.readableEnded) return onEnd();
    if (incoming.destroyed) return onCutOff();
    incoming.on("data", onData);
    incoming.on("end", onEnd);
    incoming.on("error", onCutOff);
    incoming.on("close", onCutOff);
  });
}

/** The parsed JSON body (nested at most MAX_CALLER_JSON_DEPTH deep), or undefined for an empty one. */
export async function readJsonBody(incoming: IncomingMessage, maxBytes: number): Promise<unknown> {
  const bytes = await readBodyBytes(incoming, maxBytes);
  if (bytes.byteLength === 0) return undefined;
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new InvalidParameterError("body", "the body is not UTF-8 text");
  }
  if (text.trim() === "") return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch {
    throw new InvalidParameterError("body", "the body is not valid JSON");
  }
  // Before anything walks it: code that recurses over a value (validation, JSON.stringify,
  // machines' own) would run out of stack on JSON.parse's unbounded depth.
  const tooDeep = callerNestingProblem(value, "the body");
  if (tooDeep !== undefined) throw new InvalidParameterError("body", tooDeep);
  // The cheap test first: the key can only be there if its quoted name is, or if the text uses
  // \u escapes, which can spell it ("\u005f_proto__" is the same key to JSON.parse).
  if ((text.includes('"__proto__"') || text.includes("\\u")) && holdsProtoKey(value)) {
    throw new InvalidParameterError(
      "body",
      "the body holds a key named __proto__, which JavaScript objects cannot keep as data",
    );
  }
  return value;
}

function tooLarge(maxBytes: number): BackstateError {
  return new BackstateError("payload-too-large", `the body is larger than ${maxBytes} bytes`);
}
