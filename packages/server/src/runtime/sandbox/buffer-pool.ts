// Node hands out small Buffers (Buffer.from of a short string, Buffer.concat, allocUnsafe) as
// slices of one 8 KiB pool per process, and a slice's `.buffer` is the whole pool. The sandbox's
// host code decodes every version's bodies through such Buffers (a Response's text, a FormData's),
// and machine code reaches Buffer (a CompressionStream's zlib stream has one): holding a pool, one
// version reads what the others decode into it. Without the pool each Buffer has memory of its
// own, which --zero-fill-buffers (sandbox-launch.ts) clears of what the last user left in it.

/**
 * Turns Node's Buffer pool off for the process. Called before machine code runs and before
 * harden.ts freezes Buffer, which keeps machine code from turning it back on.
 */
export function unpoolBuffers(): void {
  Buffer.poolSize = 0;
}
