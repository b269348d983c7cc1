// Signed, expiring credentials for the code upload flow, so its three requests need no server
// state in between: the signed machine version id names the version to finalize, and the upload
// fields authorize exactly one upload of code for that version. HMAC-SHA256 under a secret all
// nodes share (stored in the database); checked with a constant-time comparison.
import { createHmac, timingSafeEqual } from "node:crypto";
import { InvalidParameterError } from "../errors.js";

export type UploadTarget = { orgId: string; machineName: string; versionId: string };

export type UploadFields = { key: string; expires: string; signature: string };

const VERSION_ID = /^ver_[A-Za-z0-9_-]{1,64}$/;
const ORG_ID = /^org_[A-Za-z0-9_-]{1,64}$/;
const NAME = /^[A-Za-z0-9_-]{1,128}$/;

export class UploadSigner {
  constructor(
    private readonly secret: string,
    private readonly now: () => number,
    /** How long a provisional version can be uploaded and finalized. */
    private readonly lifetimeMs = 60 * 60 * 1000,
  ) {}

  /**
   * The path-safe signed id `ver_….<expiry>.<mac>` the finalize step takes. It is signed for the
   * machine as it is now, told by its creation time: once the machine is deleted, the id cannot
   * finalize a version onto another machine made since under the same name.
   */
  signVersionId(
    target: UploadTarget,
    machineCreatedAt: number,
  ): { signedId: string; fields: UploadFields } {
    const expires = String(this.now() + this.lifetimeMs);
    const mac = this.mac("finalize", target, expires, machineCreatedAt);
    return {
      signedId: `${target.versionId}.${expires}.${mac}`,
      fields: {
        key: `${target.orgId}/${target.machineName}/${target.versionId}`,
        expires,
        signature: this.mac("upload", target, expires),
      },
    };
  }

  /**
   * The version id a signed id names, when it was signed for this org and machine (the one made at
   * `machineCreatedAt`) and is alive.
   */
  verifySignedVersionId(
    signedId: string,
    orgId: string,
    machineName: string,
    machineCreatedAt: number,
  ): string {
    const [versionId = "", expires = "", mac = "", ...rest] = signedId.split(".");
    const target = { orgId, machineName, versionId };
    this.check(rest.length === 0 && VERSION_ID.test(versionId), "machineVersionId");
    this.check(this.valid("finalize", target, expires, mac, machineCreatedAt), "machineVersionId");
    return versionId;
  }

  /** The version an upload form is for, when its fields are intact and unexpired. */
  verifyUploadFields(fields: Partial<Record<keyof UploadFields, unknown>>): UploadTarget {
    const { key, expires, signature } = fields;
    const parts = typeof key === "string" ? key.split("/") : [];
    const [orgId = "", machineName = "", versionId = ""] = parts;
    const target = { orgId, machineName, versionId };
    this.check(
      parts.length === 3 &&
        ORG_ID.test(orgId) &&
        NAME.test(machineName) &&
        VERSION_ID.test(versionId),
      "key",
    );
    this.check(
      typeof expires === "string" &&
        typeof signature === "string" &&
        this.valid("upload", target, expires, signature),
      "signature",
    );
    return target;
  }

  private valid(
    purpose: string,
    target: UploadTarget,
    expires: string,
    mac: string,
    machineCreatedAt?: number,
  ): boolean {
    if (!/^\d{1,16}$/.test(expires) || Number(expires) < this.now()) return false;
    const expected = Buffer.from(this.mac(purpose, target, expires, machineCreatedAt));
    const given = Buffer.from(mac);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  private mac(
    purpose: string,
    target: UploadTarget,
    expires: string,
    machineCreatedAt?: number,
  ): string {
    // The parts cannot contain "\n" (names and ids are validated), so the message is unambiguous.
    const message = [purpose, target.orgId, target.machineName, target.versionId, expires];
    if (machineCreatedAt !== undefined) message.push(String(machineCreatedAt));
    return createHmac("sha256", this.secret).update(message.join("\n")).digest("base64url");
  }

  private check(ok: boolean, parameter: string): void {
    if (!ok) {
      throw new InvalidParameterError(
        parameter,
        "the upload is not signed for this machine, or its link has expired",
      );
    }
  }
}
