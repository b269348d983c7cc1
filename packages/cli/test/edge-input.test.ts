// Inputs at the edges of what commands accept: each must end in a plain message and the exit
// code the README gives, never a stack trace, and what can be sent must reach the server intact.
import assert from "node:assert/strict";
import { test } from "node:test";
import { backstate } from "./support/cli.js";

const TIMEOUT = { timeout: 60_000 };

test(
  "tokens generate with an expiry past the last date refuses it (exit 2), no stack trace",
  TIMEOUT,
  async () => {
    const result = await backstate([
      "tokens",
      "generate",
      "--key",
      "sbk_nXzdtCxESemgtxS5JX-LrA",
      "--secret",
      "sbsec_secret",
      "--claims",
      '{"sub":"alice"}',
      "--expires",
      "300000y",
    ]);
    assert.equal(result.code, 2, result.stderr);
    assert.equal(result.stdout, "");
    assert.match(result.stderr, /^backstate: .*--expires/);
    assert.doesNotMatch(result.stderr, /\n\s+at /, "no stack trace");
  },
);
