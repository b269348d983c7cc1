// Imported first by the sandbox entry (child.ts), so that the process's built-ins are frozen
// before the code of any other module runs, as Node's --frozen-intrinsics froze them before any
// script: a dependency that patched a built-in as it loads then fails at start, as it did.
import { freezeIntrinsics } from "./freeze-intrinsics.js";

freezeIntrinsics();
