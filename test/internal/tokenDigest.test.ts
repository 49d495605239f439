import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import { hash } from "node:crypto"
import { BearerToken } from "../../src/index.ts"
import * as TokenDigest from "../../src/internal/tokenDigest.ts"

const hex = (words: Int32Array): string => Array.from(words, (w) => (w >>> 0).toString(16).padStart(8, "0")).join("")

const ascii = (maxLength: number) =>
  fc.array(fc.integer({ min: 0, max: 0x7f }), { maxLength }).map((codes) => String.fromCharCode(...codes))

describe("tokenDigest", () => {
  it("is SHA-256: the standard vectors", () => {
    assert.strictEqual(hex(TokenDigest.ofAscii("")!), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    assert.strictEqual(hex(TokenDigest.ofAscii("abc")!), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
  })

  it("agrees with node:crypto at every length one block holds", () => {
    for (let length = 0; length <= TokenDigest.maxLength; length++) {
      const text = "x".repeat(length)
      assert.strictEqual(hex(TokenDigest.ofAscii(text)!), hash("sha256", text, "hex"), `length ${length}`)
    }
    fc.assert(fc.property(ascii(TokenDigest.maxLength), (text) => {
      assert.strictEqual(hex(TokenDigest.ofAscii(text)!), hash("sha256", text, "hex"))
    }), { numRuns: 2_000 })
  })

  it("gives the words of the store's key for every minted token, and the key back", () => {
    assert.isAtMost(BearerToken.length, TokenDigest.maxLength)
    for (let i = 0; i < 1_000; i++) {
      const token = BearerToken.mint()
      const key = BearerToken.lookupKey(token)
      const words = TokenDigest.ofAscii(token)!
      assert.isTrue(TokenDigest.matches(key, words))
      assert.strictEqual(TokenDigest.keyOf(words), key)
      assert.deepStrictEqual(Array.from(TokenDigest.ofKey(key)), Array.from(words))
    }
  })

  it("leaves nothing of the token in its scratch space, digested or declined", () => {
    TokenDigest.ofAscii(BearerToken.mint())
    assert.isTrue(TokenDigest.scratchIsClear())
    assert.isUndefined(TokenDigest.ofAscii(BearerToken.mint().slice(0, -1) + "é"))
    assert.isTrue(TokenDigest.scratchIsClear())
  })

  it("declines what is not one block of ASCII, rather than hash other bytes", () => {
    assert.isUndefined(TokenDigest.ofAscii("x".repeat(TokenDigest.maxLength + 1)))
    for (const odd of ["\u0080", "é", "中", "😀", "\u00ff"]) {
      const text = BearerToken.mint().slice(0, BearerToken.length - odd.length) + odd
      assert.isUndefined(TokenDigest.ofAscii(text), JSON.stringify(odd))
    }
  })

  it("matches only the same digest", () => {
    const key = BearerToken.lookupKey(BearerToken.mint())
    const words = Int32Array.from(TokenDigest.ofKey(key))
    for (let i = 0; i < 8; i++) {
      const other = Int32Array.from(words)
      other[i] = other[i]! ^ 1
      assert.isFalse(TokenDigest.matches(key, other), `word ${i}`)
    }
    assert.isTrue(TokenDigest.matches(key, words))
  })
})
