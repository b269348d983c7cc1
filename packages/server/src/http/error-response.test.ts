import assert from "node:assert/strict";
import { test } from "node:test";
import { BackstateError } from "../errors.js";
import { silentLogger } from "../engine/logger.js";
import { errorResponse } from "./error-response.js";

test("a code the table does not hold answers 500, not a status it never had", () => {
  for (const code of ["toString", "constructor", "no-such-code"]) {
    const { status, body } = errorResponse(new BackstateError(code as never, "m"), silentLogger);
    assert.equal(status, 500, code);
    assert.equal(body.code, code);
  }
  assert.equal(errorResponse(new BackstateError("conflict", "m"), silentLogger).status, 409);
});
