import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import { byFirstCode, byTail, ShardedMap } from "../../src/internal/shardedMap.ts"

type Op =
  | { readonly op: "set"; readonly key: string; readonly value: number }
  | { readonly op: "delete"; readonly key: string }

const keys = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom("", "a", "thread-1", "thread-2", "\u0000"))
const ops = fc.array(
  fc.oneof(
    fc.record({ op: fc.constant("set" as const), key: keys, value: fc.integer() }),
    fc.record({ op: fc.constant("delete" as const), key: keys })
  ),
  { maxLength: 200 }
)

describe("ShardedMap", () => {
  it("behaves as one Map under any sequence of sets and deletes", () => {
    fc.assert(fc.property(ops, (sequence: ReadonlyArray<Op>) => {
      const model = new Map<string, number>()
      const sharded = new ShardedMap<number>(byTail)
      for (const step of sequence) {
        if (step.op === "set") {
          model.set(step.key, step.value)
          sharded.set(step.key, step.value)
        } else {
          assert.strictEqual(sharded.delete(step.key), model.delete(step.key))
        }
        assert.strictEqual(sharded.size, model.size)
      }
      for (const [key, value] of model) {
        assert.isTrue(sharded.has(key))
        assert.strictEqual(sharded.get(key), value)
      }
      assert.sameMembers([...sharded.values()], [...model.values()])
    }))
  })

  it("keeps iterating while entries are deleted under it, and never yields a deleted one", () => {
    const sharded = new ShardedMap<number>(byTail)
    for (let i = 0; i < 10_000; i++) sharded.set(`k${i}`, i)
    const visited = new Set<number>()
    const deleted = new Set<number>()
    for (const value of sharded.values()) {
      assert.isFalse(deleted.has(value), `yielded ${value} after its deletion`)
      visited.add(value)
      // Delete the current entry and one other, visited or not, in any shard.
      sharded.delete(`k${value}`)
      deleted.add(value)
      const other = (value * 7919) % 10_000
      if (sharded.delete(`k${other}`)) deleted.add(other)
    }
    assert.strictEqual(sharded.size, 0)
    // Every entry was either visited or deleted before the iterator reached it.
    for (let i = 0; i < 10_000; i++) assert.isTrue(visited.has(i) || deleted.has(i))
    assert.isBelow(visited.size, 10_000)
  })

  it("spreads sequential ids and digests over every shard", () => {
    const tails = new Set<number>()
    for (let i = 0; i < 10_000; i++) tails.add(byTail(`thread-${i}`))
    const firsts = new Set<number>()
    for (let i = 0; i < 256; i++) firsts.add(byFirstCode(String.fromCharCode(i) + "rest"))
    for (const shards of [tails, firsts]) {
      assert.strictEqual(shards.size, 64)
      for (const shard of shards) assert.isTrue(Number.isInteger(shard) && shard >= 0 && shard < 64)
    }
    // The count per shard of 64,000 sequential ids stays near 1,000: no hot shard.
    const counts = new Array<number>(64).fill(0)
    for (let i = 0; i < 64_000; i++) counts[byTail(`cred_${i}`)]!++
    assert.isBelow(Math.max(...counts), 1_300)
  })
})
