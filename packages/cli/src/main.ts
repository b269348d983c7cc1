#!/usr/bin/env node
// The `backstate` command. Everything lives in program.ts and commands/; this file only runs it.
import { run } from "./program.js";

const code = await run(process.argv);
// process.exit drops what stdout has not written yet: into a pipe (`backstate … --json | jq`)
// that was everything past the pipe's buffer. An empty write calls back once all before it went.
process.stdout.write("", () => process.exit(code));
