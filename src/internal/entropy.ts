import { randomFillSync } from "node:crypto"

// Random bytes are drawn from the CSPRNG in batches: one syscall per 8 KiB
// keeps minting fast, and every slice is zeroed once it has been encoded.
const pool = Buffer.alloc(8192)
let offset = pool.length

/** `bytes` fresh CSPRNG bytes, base64url-encoded without padding. */
export const randomBase64Url = (bytes: number): string => {
  if (offset + bytes > pool.length) {
    randomFillSync(pool)
    offset = 0
  }
  const start = offset
  offset += bytes
  // Encoded and zeroed by range, without a view object per call.
  const text = pool.toString("base64url", start, offset)
  pool.fill(0, start, offset)
  return text
}
