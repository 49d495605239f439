import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import { DigestIndex } from "../../src/internal/digestIndex.ts"

/** A 32-character binary string of eight words. */
const keyOf = (words: ReadonlyArray<number>): string =>
  words.map((w) => String.fromCharCode((w >>> 24) & 0xff, (w >>> 16) & 0xff, (w >>> 8) & 0xff, w & 0xff)).join("")

interface Value {
  readonly key: string
  readonly n: number
}

// Keys crowded into one shard and a few probe starts, with few distinct
// second words: long runs, wrapped runs, and slots whose two words agree
// while the rest of the digest differs.
const crowded = (i: number): string => keyOf([0x1000_0000, (i % 7) * 5 + (i % 3 === 0 ? 15 : 0), i % 2, i, 0, 0, 0, i * 31])

const find = (index: DigestIndex<Value>, key: string) => index.get(key)

describe("DigestIndex", () => {
  it("behaves as a Map under any sequence of adds and deletes of crowded keys", () => {
    const ops = fc.array(fc.record({ add: fc.boolean(), i: fc.integer({ min: 0, max: 60 }) }), { maxLength: 400 })
    fc.assert(fc.property(ops, (sequence) => {
      const index = new DigestIndex<Value>()
      const model = new Map<number, Value>()
      for (const { add, i } of sequence) {
        if (add) {
          if (!model.has(i)) {
            const value = { key: crowded(i), n: i }
            index.add(value)
            model.set(i, value)
          }
        } else {
          const value = model.get(i)
          assert.strictEqual(index.delete(value ?? { key: crowded(i), n: i }), value !== undefined)
          model.delete(i)
        }
        assert.strictEqual(index.size, model.size)
        for (let j = 0; j <= 60; j++) {
          assert.strictEqual(find(index, crowded(j)), model.get(j))
          assert.strictEqual(index.has(crowded(j)), model.has(j))
        }
      }
    }), { numRuns: 300 })
  })

  it("finds every value as it grows past its capacity and shrinks back", () => {
    const index = new DigestIndex<Value>()
    const values = Array.from({ length: 20_000 }, (_, n) => ({ key: keyOf([n * 2654435761, n, n ^ 5, n, 1, 2, 3, 4]), n }))
    for (const value of values) index.add(value)
    assert.strictEqual(index.size, values.length)
    for (const value of values) assert.strictEqual(find(index, value.key), value)
    for (const value of values.slice(0, 19_990)) assert.isTrue(index.delete(value))
    assert.strictEqual(index.size, 10)
    for (const value of values.slice(0, 19_990)) assert.isUndefined(find(index, value.key))
    for (const value of values.slice(19_990)) assert.strictEqual(find(index, value.key), value)
  })

  it("keeps probe runs short for random digests, and tells a crowded run", () => {
    const index = new DigestIndex<Value>()
    for (let n = 0; n < 100_000; n++) {
      const words = Array.from({ length: 8 }, () => (Math.random() * 2 ** 32) | 0)
      index.add({ key: keyOf(words), n })
    }
    // At most half full, linear probing's longest run grows as log n: about
    // 20 slots here. A clustering bug (a bad start slot) makes it thousands.
    assert.isAtMost(index.longestRun(), 64)
    const crowd = new DigestIndex<Value>()
    for (let i = 0; i <= 60; i++) crowd.add({ key: crowded(i), n: i })
    assert.isAtLeast(crowd.longestRun(), 40)
  })

  it("deletes only the very value it holds", () => {
    const index = new DigestIndex<Value>()
    const value = { key: crowded(1), n: 1 }
    index.add(value)
    assert.isFalse(index.delete({ key: crowded(1), n: 1 }))
    assert.strictEqual(find(index, value.key), value)
  })
})
