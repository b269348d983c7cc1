import assert from "node:assert/strict";
import { test } from "node:test";
import { UploadSigner } from "./upload-signer.js";

const target = { orgId: "org_a", machineName: "m", versionId: "ver_1" };

function signerAt(start: number) {
  let now = start;
  return {
    signer: new UploadSigner("secret", () => now, 1000),
    advance: (ms: number) => (now += ms),
  };
}

test("a signed version id verifies for its org and machine only, until it expires", () => {
  const { signer, advance } = signerAt(10_000);
  const { signedId } = signer.signVersionId(target, 5);
  assert.equal(signer.verifySignedVersionId(signedId, "org_a", "m", 5), "ver_1");
  assert.throws(() => signer.verifySignedVersionId(signedId, "org_b", "m", 5), {
    code: "invalid-parameter",
  });
  assert.throws(() => signer.verifySignedVersionId(signedId, "org_a", "n", 5), {
    code: "invalid-parameter",
  });
  // Signed for the machine made at 5: not for another made since under its name.
  assert.throws(() => signer.verifySignedVersionId(signedId, "org_a", "m", 6), {
    code: "invalid-parameter",
  });
  assert.throws(() => signer.verifySignedVersionId(`${signedId}.extra`, "org_a", "m", 5));
  advance(1001);
  assert.throws(() => signer.verifySignedVersionId(signedId, "org_a", "m", 5), {
    code: "invalid-parameter",
  });
});

test("upload fields verify only intact, unexpired, and under the same secret", () => {
  const { signer, advance } = signerAt(10_000);
  const { fields } = signer.signVersionId(target, 5);
  assert.deepEqual(signer.verifyUploadFields(fields), target);
  const other = new UploadSigner("another secret", () => 10_000, 1000);
  assert.throws(() => other.verifyUploadFields(fields), { code: "invalid-parameter" });
  for (const tampered of [
    { ...fields, key: "org_a/n/ver_1" },
    { ...fields, key: "org_a/m/ver_2" },
    { ...fields, key: "org_a/m/ver_1/extra" },
    { ...fields, expires: String(Number(fields.expires) + 1) },
    { ...fields, signature: fields.signature.slice(1) },
    { ...fields, signature: undefined },
  ]) {
    assert.throws(() => signer.verifyUploadFields(tampered), { code: "invalid-parameter" });
  }
  // The finalize signature is not an upload signature, nor the reverse.
  const signedMac = signer.signVersionId(target, 5).signedId.split(".")[2];
  assert.throws(() => signer.verifyUploadFields({ ...fields, signature: signedMac }));
  advance(1001);
  assert.throws(() => signer.verifyUploadFields(fields), { code: "invalid-parameter" });
});
