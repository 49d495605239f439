/**
 * SHA-256 of a bearer token as eight 32-bit words, computed in JavaScript:
 * the key the memory store's lookup reads its index by.
 *
 * A token is 55 ASCII characters, which SHA-256 pads into exactly one
 * 64-byte block, so its digest is one compression and no buffer. In a hot
 * loop `crypto.hash` is faster (SHA-NI, about 260 ns against 430 here); inside
 * a busy HTTP server, where each request evicts what the last one warmed, it
 * is slower: the call into the binding and OpenSSL's code are cold on every
 * request, and the digest comes back as a string the lookup must then hash
 * again. Servers are what the lookup is for, so it is this one; the bench's
 * guard family times both in place. Its output is tested against
 * `node:crypto` for every length a block holds.
 */

const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
])

/** The longest string one block holds: 64 bytes less the 0x80 marker and the 8-byte length. */
export const maxLength = 55

// Scratch space. The digest is overwritten by the next call, so a caller
// reads the words it was given before it digests anything else. The schedule
// holds the token itself (its first 16 words are the token's bytes, and the
// rest give them back), so it is cleared before returning: no raw token
// outlives the call in a buffer that lives as long as the process.
const schedule = new Int32Array(64)
const digest = new Int32Array(8)

/**
 * The SHA-256 digest of `text` as eight big-endian words, in a buffer the
 * next call overwrites; `undefined` when `text` is longer than one block or
 * holds a character outside ASCII (a token never does, and its UTF-8 bytes
 * would not be its character codes).
 */
export const ofAscii = (text: string): Int32Array | undefined => {
  const n = text.length
  if (n > maxLength) return undefined
  // All zero on entry: every return below clears what it wrote.
  const w = schedule
  let seen = 0
  for (let i = 0; i < n; i++) {
    const code = text.charCodeAt(i)
    seen |= code
    w[i >> 2] = w[i >> 2]! | (code << (24 - ((i & 3) << 3)))
  }
  if (seen > 0x7f) {
    w.fill(0, 0, 16)
    return undefined
  }
  w[n >> 2] = w[n >> 2]! | (0x80 << (24 - ((n & 3) << 3)))
  w[15] = n * 8
  for (let i = 16; i < 64; i++) {
    const w15 = w[i - 15]!
    const w2 = w[i - 2]!
    const s0 = ((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3)
    const s1 = ((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10)
    w[i] = (w[i - 16]! + s0 + w[i - 7]! + s1) | 0
  }
  let a = 0x6a09e667 | 0
  let b = 0xbb67ae85 | 0
  let c = 0x3c6ef372 | 0
  let d = 0xa54ff53a | 0
  let e = 0x510e527f | 0
  let f = 0x9b05688c | 0
  let g = 0x1f83d9ab | 0
  let h = 0x5be0cd19 | 0
  for (let i = 0; i < 64; i++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))
    const t1 = (h + S1 + ((e & f) ^ (~e & g)) + K[i]! + w[i]!) | 0
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))
    const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0
    h = g
    g = f
    f = e
    e = (d + t1) | 0
    d = c
    c = b
    b = a
    a = (t1 + t2) | 0
  }
  digest[0] = (a + 0x6a09e667) | 0
  digest[1] = (b + 0xbb67ae85) | 0
  digest[2] = (c + 0x3c6ef372) | 0
  digest[3] = (d + 0xa54ff53a) | 0
  digest[4] = (e + 0x510e527f) | 0
  digest[5] = (f + 0x9b05688c) | 0
  digest[6] = (g + 0x1f83d9ab) | 0
  digest[7] = (h + 0x5be0cd19) | 0
  w.fill(0)
  return digest
}

/**
 * Whether the scratch schedule holds nothing of the last text digested.
 *
 * @internal
 */
export const scratchIsClear = (): boolean => schedule.every((word) => word === 0)

/** Word `i` of a digest held as a 32-character binary string. */
export const wordOf = (key: string, i: number): number =>
  (key.charCodeAt(i * 4) << 24) | (key.charCodeAt(i * 4 + 1) << 16) | (key.charCodeAt(i * 4 + 2) << 8) |
  key.charCodeAt(i * 4 + 3)

/** Whether a binary-string digest and a word digest are the same digest. */
export const matches = (key: string, words: Int32Array): boolean => {
  for (let i = 0; i < 8; i++) {
    if (wordOf(key, i) !== words[i]) return false
  }
  return true
}

/** A word digest as the 32-character binary string the store's other indexes key by. */
export const keyOf = (words: Int32Array): string => {
  let key = ""
  for (let i = 0; i < 8; i++) {
    const w = words[i]!
    key += String.fromCharCode((w >>> 24) & 0xff, (w >>> 16) & 0xff, (w >>> 8) & 0xff, w & 0xff)
  }
  return key
}

const keyWords = new Int32Array(8)

/** A binary-string digest as words, in a buffer the next call overwrites. */
export const ofKey = (key: string): Int32Array => {
  for (let i = 0; i < 8; i++) keyWords[i] = wordOf(key, i)
  return keyWords
}
