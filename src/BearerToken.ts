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
import { crc32 } from "node:zlib"
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

// The checksum is the big-endian CRC-32 of the body in base64url: 32 bits
// spread over six characters of 6, 6, 6, 6, 6 and 2 bits (the last padded).
const checksumDigit = (sum: number, i: number): number =>
  i < 5 ? (sum >>> (26 - 6 * i)) & 63 : (sum & 3) << 4

const checksumOf = (body: string): string => {
  const sum = crc32(body)
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
  const body = input.slice(prefix.length, prefix.length + bodyLength)
  for (let i = 0; i < bodyLength; i++) {
    if (!isBase64UrlCode(body.charCodeAt(i))) return "malformed"
  }
  // The last body character carries only 4 significant bits; a canonical
  // encoding of 32 bytes leaves the low two bits zero.
  if ((base64UrlValue(body.charCodeAt(bodyLength - 1)) & 0b11) !== 0) return "malformed"
  // Compared digit by digit, so a well-formed token costs no allocation here.
  const sum = crc32(body)
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

const isBase64UrlCode = (c: number): boolean =>
  (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 45 || c === 95

const base64UrlValue = (c: number): number =>
  c >= 65 && c <= 90
    ? c - 65
    : c >= 97 && c <= 122
    ? c - 71
    : c >= 48 && c <= 57
    ? c + 4
    : c === 45
    ? 62
    : 63
