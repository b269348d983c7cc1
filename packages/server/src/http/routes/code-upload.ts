// The upload URL of the version flow: an emulation of an S3 presigned POST. It takes no token;
// the signed form fields authorize one upload of code for one provisional version. The bundle
// may be gzipped (smply always gzips); limits: 1 MB as sent, 10 MB of source once unzipped.
import { gunzipSync } from "node:zlib";
import { BackstateError, InvalidParameterError } from "../../errors.js";
import { unstorableTextProblem } from "../../store/stored-text.js";
import type { ApiRequest } from "../api-request.js";
import { readBodyBytes } from "../read-body.js";
import { route } from "../route.js";
import { CODE_UPLOAD_PATH } from "./versions.js";

export const MAX_BUNDLE_BYTES = 1_000_000;
export const MAX_SOURCE_BYTES = 10_000_000;
// The multipart envelope around the file: boundaries, the signed fields, the file's headers.
const FORM_OVERHEAD_BYTES = 64 * 1024;
// Uploads nobody finalized are dropped after this long (the signed link lives one hour).
const UPLOAD_RETENTION_MS = 2 * 60 * 60 * 1000;

export const codeUploadRoutes = [
  route({
    method: "POST",
    path: CODE_UPLOAD_PATH,
    summary: "Upload a provisional version's code (multipart form: the signed fields, then `file`)",
    access: { kind: "public" },
    body: "multipart",
    maxBodyBytes: MAX_BUNDLE_BYTES + FORM_OVERHEAD_BYTES,
    status: 204,
    async handle({ request, services }) {
      const form = await readForm(request);
      const target = services.uploads.verifyUploadFields({
        key: form.get("key"),
        expires: form.get("expires"),
        signature: form.get("signature"),
      });
      const file = form.get("file");
      if (file === null || typeof file === "string") {
        throw new InvalidParameterError("file", "the form has no file field");
      }
      const sent = new Uint8Array(await file.arrayBuffer());
      if (sent.byteLength > MAX_BUNDLE_BYTES)
        throw tooLarge(`bundles are limited to ${MAX_BUNDLE_BYTES} bytes`);
      const gzipped = form.get("content-encoding") === "gzip" || isGzip(sent);
      const code = decodeSource(gzipped ? gunzip(sent) : sent);
      const now = services.clock.now();
      await services.store.purgeCodeUploads(now - UPLOAD_RETENTION_MS);
      await services.store.putCodeUpload({
        orgId: target.orgId,
        machineName: target.machineName,
        id: target.versionId,
        code,
        createdAt: now,
      });
    },
  }),
];

async function readForm(request: ApiRequest): Promise<FormData> {
  // The size bound first, then the parse over the bytes already read.
  const bytes = await readBodyBytes(request.incoming, MAX_BUNDLE_BYTES + FORM_OVERHEAD_BYTES);
  const contentType = request.header("content-type") ?? "";
  if (!contentType.toLowerCase().startsWith("multipart/form-data")) {
    throw new InvalidParameterError("content-type", "upload a multipart/form-data form");
  }
  try {
    return await new Response(bytes, { headers: { "content-type": contentType } }).formData();
  } catch {
    throw new InvalidParameterError("body", "the upload is not a valid multipart form");
  }
}

function isGzip(bytes: Uint8Array): boolean {
  return bytes[0] === 0x1f && bytes[1] === 0x8b;
}

function gunzip(bytes: Uint8Array): Uint8Array {
  try {
    return gunzipSync(bytes, { maxOutputLength: MAX_SOURCE_BYTES });
  } catch (err) {
    if ((err as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") {
      throw tooLarge(`unzipped bundles are limited to ${MAX_SOURCE_BYTES} bytes`);
    }
    throw new InvalidParameterError("file", "the file is not valid gzip");
  }
}

function decodeSource(bytes: Uint8Array): string {
  let code: string;
  try {
    code = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new InvalidParameterError("file", "the bundle is not UTF-8 text");
  }
  // Kept as text until finalized (bundlers write NUL in strings as an escape, never raw).
  const problem = unstorableTextProblem(code);
  if (problem !== undefined) throw new InvalidParameterError("file", `the bundle ${problem}`);
  return code;
}

function tooLarge(message: string): BackstateError {
  return new BackstateError("payload-too-large", message);
}
