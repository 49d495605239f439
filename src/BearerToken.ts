/**
 * The bearer token format: how tokens are minted, recognised and digested.
 *
 * A token is `mcpsr_` followed by 43 base64url characters (256 bits from the
 * operating system's CSPRNG) and a 6-character base64url CRC-32 of those
 * characters. The fixed prefix lets secret scanners find a leaked token, and
 * the checksum lets `parse` reject a mistyped or truncated token without
 * touching the registry. Only the SHA-256 digest of a token is ever stored.
 *
 * @since 0.1.0
 */
import { hash } from "node:crypto"
import { randomBase64Url } from "./internal/entropy.ts"

/**
 * The prefix every token starts with; register it with your secret scanner.
 *
 * @since 0.1.0
 */
export const prefix = "mcpsr_"

const entropyBytes = 32
const bodyLength = 43 // base64url of 32 bytes, unpadded
const checksumLength = 6 // base64url of a 4-byte CRC-32, unpadded

/**
 * The exact length of every token, in characters.
 *
 * @since 0.1.0
 */
export const length = prefix.length + bodyLength + checksumLength

/**
 * Matches a well-formed token anywhere in a text, for scanners and log filters.
 *
 * @since 0.1.0
 */
export const pattern: RegExp = /mcpsr_[A-Za-z0-9_-]{49}/

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// Base64url value of each ASCII code, -1 outside the alphabet.
const values = new Int8Array(128).fill(-1)
for (let i = 0; i < 64; i++) values[alphabet.charCodeAt(i)] = i

// CRC-32 (IEEE, as zlib's) computed in JavaScript over the body's ASCII codes:
// the body is checked and summed in one pass with no native call and no
// allocation, which keeps `check` far cheaper than the SHA-256 after it.
const crcTable = new Int32Array(256)
for (let n = 0; n < 256; n++) {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
  crcTable[n] = c
}

// The checksum is the big-endian CRC-32 of the body in base64url: 32 bits
// spread over six characters of 6, 6, 6, 6, 6 and 2 bits (the last padded).
const checksumDigit = (sum: number, i: number): number =>
  i < 5 ? (sum >>> (26 - 6 * i)) & 63 : (sum & 3) << 4

/** The CRC-32 of the body at `input[from, from + bodyLength)`, or -1 if a character is not base64url. */
const bodySum = (input: string, from: number): number => {
  let crc = -1
  let value = 0
  for (let i = from; i < from + bodyLength; i++) {
    const c = input.charCodeAt(i)
    value = c < 128 ? values[c]! : -1
    if (value < 0) return -1
    crc = crcTable[(crc ^ c) & 0xff]! ^ (crc >>> 8)
  }
  // The last body character carries only 4 significant bits; a canonical
  // encoding of 32 bytes leaves the low two bits zero.
  if ((value & 0b11) !== 0) return -1
  return (crc ^ -1) >>> 0
}

const checksumOf = (body: string): string => {
  const sum = bodySum(body, 0)
  let out = ""
  for (let i = 0; i < checksumLength; i++) out += alphabet[checksumDigit(sum, i)]
  return out
}

/**
 * Mints a fresh token. The caller must wrap it in `Redacted` at once.
 *
 * @since 0.1.0
 */
export const mint = (): string => {
  const body = randomBase64Url(entropyBytes)
  return prefix + body + checksumOf(body)
}

/**
 * Why a presented string is not a token, or `undefined` when it is well formed.
 *
 * `missing` is the empty string; `malformed` is anything else that is not a
 * token: wrong length (checked first, so a megabyte of input costs nothing),
 * prefix, alphabet or checksum.
 *
 * @since 0.1.0
 */
export const check = (input: string): "missing" | "malformed" | undefined => {
  if (input.length === 0) return "missing"
  if (input.length !== length || !input.startsWith(prefix)) return "malformed"
  const sum = bodySum(input, prefix.length)
  if (sum < 0) return "malformed"
  const at = prefix.length + bodyLength
  for (let i = 0; i < checksumLength; i++) {
    if (input.charCodeAt(at + i) !== alphabet.charCodeAt(checksumDigit(sum, i))) return "malformed"
  }
  return undefined
}

/**
 * The SHA-256 digest of a token as a 32-character binary string: the only form
 * in which the registry keeps it, and a compact `Map` key. The one-shot
 * `crypto.hash` is about four times faster than a `createHash` object here,
 * and this runs on every request.
 *
 * @since 0.1.0
 */
export const digest = (token: string): string => hash("sha256", token, "binary")
