/**
 * The bearer token format: how tokens are minted, recognised and digested.
 *
 * A token is `mcpsr_` followed by 43 base64url characters (256 bits from the
 * operating system's CSPRNG) and a 6-character checksum: the first 36 bits,
 * in base64url, of the SHA-256 of the prefix and body. The fixed prefix lets
 * secret scanners find a leaked token, and the checksum lets anyone with a
 * SHA-256 verify one offline. The registry stores a token only as a SHA-256
 * digest: the Redis store that same digest, so checking and looking up a
 * token cost one hash; the memory store the digest of the whole token, so a
 * live token costs one hash and no checksum test, and a mistyped one a second
 * hash once no credential matched it (a truncated one fails on its length).
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
const checksumLength = 6 // the digest's first 36 bits in base64url

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
const alphabetCodes = Uint8Array.from(alphabet, (c) => c.charCodeAt(0))

/** The part of a token the digest covers: the prefix and the body, not the checksum. */
const keyedLength = prefix.length + bodyLength

/**
 * The `i`-th checksum character's code: the `i`-th 6-bit group of the digest,
 * so the six characters spell the digest's first 36 bits in base64url.
 */
const checksumCode = (key: string, i: number): number => {
  const bit = 6 * i
  const at = bit >> 3
  const pair = (key.charCodeAt(at) << 8) | key.charCodeAt(at + 1)
  return alphabetCodes[(pair >> (10 - (bit & 7))) & 63]!
}

const checksumOf = (key: string): string =>
  String.fromCharCode(
    checksumCode(key, 0),
    checksumCode(key, 1),
    checksumCode(key, 2),
    checksumCode(key, 3),
    checksumCode(key, 4),
    checksumCode(key, 5)
  )

/**
 * Mints a fresh token. The caller must wrap it in `Redacted` at once.
 *
 * @since 0.1.0
 */
export const mint = (): string => mintKeyed().token

/**
 * Mints a fresh token with its digest, computed once for both the checksum
 * and the Redis store's key.
 *
 * @internal
 */
export const mintKeyed = (): { readonly token: string; readonly key: string } => {
  const keyed = prefix + randomBase64Url(entropyBytes)
  const key = hash("sha256", keyed, "binary")
  return { token: keyed + checksumOf(key), key }
}

// A token's length and prefix: the checks that cost nothing, made before any
// hashing, so a megabyte of input fails on its length alone.
const shapeOf = (input: string): "missing" | "malformed" | undefined =>
  input.length === 0
    ? "missing"
    : input.length !== length || !input.startsWith(prefix)
    ? "malformed"
    : undefined

// No issued token holds a character outside ASCII, and the digest of one
// that does is of its UTF-8 bytes: its checksum could agree, by chance or by
// craft, without its being a token.
const isAscii = (text: string): boolean => {
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) > 0x7f) return false
  }
  return true
}

/**
 * Whether the checksum of a well-shaped `token` agrees with its `digest`. Any
 * changed, swapped or lost character fails it, and so does a character
 * outside ASCII and all but a 2^-36 share of random strings; a string
 * crafted to pass it is merely unknown.
 *
 * @internal
 */
export const checksumMatches = (token: string, key: string): boolean => {
  // Unrolled over the digest's first five bytes: this runs on every request
  // to the Redis store, and on every refusal by the memory store.
  const k0 = key.charCodeAt(0)
  const k1 = key.charCodeAt(1)
  const k2 = key.charCodeAt(2)
  const k3 = key.charCodeAt(3)
  const k4 = key.charCodeAt(4)
  return token.charCodeAt(keyedLength) === alphabetCodes[k0 >> 2] &&
    token.charCodeAt(keyedLength + 1) === alphabetCodes[((k0 & 3) << 4) | (k1 >> 4)] &&
    token.charCodeAt(keyedLength + 2) === alphabetCodes[((k1 & 15) << 2) | (k2 >> 6)] &&
    token.charCodeAt(keyedLength + 3) === alphabetCodes[k2 & 63] &&
    token.charCodeAt(keyedLength + 4) === alphabetCodes[k3 >> 2] &&
    token.charCodeAt(keyedLength + 5) === alphabetCodes[((k3 & 3) << 4) | (k4 >> 4)] &&
    isAscii(token)
}

// The whole format, for `check`: a checksum anyone can compute does not keep
// a crafted string's characters inside base64url, and a host may rely on
// `check` before it puts a string into a header, a file or a command line.
const wellFormed = /^mcpsr_[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048][A-Za-z0-9_-]{6}$/

/**
 * Why a presented string is not a token, or `undefined` when it is well formed.
 *
 * `missing` is the empty string; `malformed` is anything else that is not a
 * token: wrong length or prefix (checked first, so a megabyte of input costs
 * nothing), a character outside base64url, a body that is not the canonical
 * encoding of 32 bytes, or a checksum that disagrees with the digest.
 * (`resolve` checks the length and the checksum only, which covers the prefix
 * and refuses every accidental corruption; the memory store tests the
 * checksum once no credential matched the whole token. A crafted string that
 * passes its checksum still matches no credential.)
 *
 * @since 0.1.0
 */
export const check = (input: string): "missing" | "malformed" | undefined =>
  shapeOf(input) ??
    (wellFormed.test(input) && checksumMatches(input, digest(input)) ? undefined : "malformed")

/**
 * The SHA-256 digest of a token's prefix and body as a 32-character binary
 * string: the Redis store's key. Its first 36 bits are the token's checksum,
 * so the Redis store hashes once to check the token and to look it up. The
 * one-shot `crypto.hash` is about four times faster than a `createHash`
 * object here, and this runs on every request to Redis.
 *
 * @since 0.1.0
 */
export const digest = (token: string): string => hash("sha256", token.slice(0, keyedLength), "binary")

/**
 * The SHA-256 digest of a whole token, checksum included, as a 32-character
 * binary string: the memory store's key. A token found under it is the
 * issued token to its last character, so a live lookup needs no checksum
 * test (nor the slice `digest` hashes); the checksum is tested only for a
 * token the store does not hold, to tell `malformed` from `unknown`.
 *
 * @internal
 */
export const lookupKey = (token: string): string => hash("sha256", token, "binary")
