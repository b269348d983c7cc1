#!/usr/bin/env node
// The `backstate` command. Everything lives in program.ts and commands/; this file only runs it.
import { run } from "./program.js";

process.exit(await run(process.argv));
