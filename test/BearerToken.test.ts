import { assert, describe, it } from "@effect/vitest"
import { createHash } from "node:crypto"
import { BearerToken } from "../src/index.ts"

const flip = (token: string, at: number): string => {
  const c = token[at]!
  return token.slice(0, at) + (c === "A" ? "B" : "A") + token.slice(at + 1)
}

describe("BearerToken", () => {
  it("mints 55-character, prefixed, URL- and header-safe tokens", () => {
    const token = BearerToken.mint()
    assert.strictEqual(token.length, BearerToken.length)
    assert.strictEqual(token.length, 55)
    assert.isTrue(token.startsWith("mcpsr_"))
    assert.match(token, /^[A-Za-z0-9_-]+$/)
    assert.isTrue(BearerToken.pattern.test(`leaked: ${token} in a log`))
    assert.strictEqual(encodeURIComponent(token), token)
  })

  it("draws fresh 256-bit randomness for every token", () => {
    const tokens = new Set(Array.from({ length: 10_000 }, BearerToken.mint))
    assert.strictEqual(tokens.size, 10_000)
    // 43 base64url characters carry 258 bits, of which the last 2 are padding.
    const bodies = new Set([...tokens].map((t) => t.slice(6, 49)))
    assert.strictEqual(bodies.size, 10_000)
  })

  it("accepts every token it mints", () => {
    for (let i = 0; i < 10_000; i++) {
      assert.isUndefined(BearerToken.check(BearerToken.mint()))
    }
  })

  it("tells missing from malformed without a lookup", () => {
    const token = BearerToken.mint()
    assert.strictEqual(BearerToken.check(""), "missing")
    assert.strictEqual(BearerToken.check("x".repeat(1024 * 1024)), "malformed")
    assert.strictEqual(BearerToken.check(token.slice(0, -1)), "malformed")
    assert.strictEqual(BearerToken.check(token + "A"), "malformed")
    assert.strictEqual(BearerToken.check("mcpsx_" + token.slice(6)), "malformed")
    assert.strictEqual(BearerToken.check(token.slice(0, 20) + "!" + token.slice(21)), "malformed")
    assert.strictEqual(BearerToken.check(token.slice(0, 20) + "\u0000" + token.slice(21)), "malformed")
    assert.strictEqual(BearerToken.check(token.slice(0, 20) + "é" + token.slice(21)), "malformed")
  })

  it("catches any single changed character through the checksum", () => {
    const token = BearerToken.mint()
    for (let at = 6; at < token.length; at++) {
      assert.strictEqual(BearerToken.check(flip(token, at)), "malformed", `position ${at}`)
    }
  })

  it("spells the first 36 bits of the SHA-256 of prefix and body in its checksum, for offline checks", () => {
    for (let i = 0; i < 1000; i++) {
      const token = BearerToken.mint()
      const expected = createHash("sha256").update(token.slice(0, 49)).digest("base64url").slice(0, 6)
      assert.strictEqual(token.slice(49), expected)
      assert.strictEqual(BearerToken.digest(token), createHash("sha256").update(token.slice(0, 49)).digest().toString("latin1"))
    }
  })

  it("refuses a crafted string whose checksum is right but whose characters are not a token's", () => {
    // Anyone can compute the checksum, so `check` verifies the alphabet and
    // the canonical last body character on their own.
    const withChecksum = (keyed: string) =>
      keyed + createHash("sha256").update(keyed).digest("base64url").slice(0, 6)
    const body = BearerToken.mint().slice(6, 48)
    const crafted = [
      withChecksum("mcpsr_" + "a\r\nSet-Cookie: x=1; $(id)".padEnd(42, "A") + "A"),
      withChecksum("mcpsr_" + body.slice(0, 41) + "é" + "A"),
      withChecksum("mcpsr_" + body + "B") // last body character carries bits past the 32 bytes
    ]
    for (const token of crafted) {
      assert.strictEqual(token.length, BearerToken.length)
      assert.strictEqual(BearerToken.check(token), "malformed", JSON.stringify(token))
    }
    assert.isUndefined(BearerToken.check(withChecksum("mcpsr_" + body + "A")))
  })

  it("digests to a 32-byte SHA-256 key that differs per token", () => {
    const a = BearerToken.mint()
    const b = BearerToken.mint()
    assert.strictEqual(BearerToken.digest(a).length, 32)
    assert.strictEqual(BearerToken.digest(a), BearerToken.digest(a))
    assert.notStrictEqual(BearerToken.digest(a), BearerToken.digest(b))
    assert.notInclude(BearerToken.digest(a), a.slice(6))
  })
})
