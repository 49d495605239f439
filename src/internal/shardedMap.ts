/**
 * A string-keyed map split over 64 `Map`s by a hash of its key.
 *
 * V8 rehashes a whole `Map` in one step when deletions leave it a quarter
 * full, and again when deleted slots fill it: emptying a million-entry index
 * stalled the event loop 30-60 ms inside a single `delete`, however small the
 * sweeper's chunks. Split 64 ways, the largest such rehash is 64 times
 * smaller, at the price of one array index per operation. Its surface is the
 * subset of `Map` the store uses, so a `Map` can stand in for it in tests.
 */

const shardCount = 64

/** Picks a key's shard, in `[0, 64)`. */
export type ShardOf = (key: string) => number

/** For keys whose first character is already uniform: SHA-256 digests as binary strings. */
export const byFirstCode: ShardOf = (key) => key.charCodeAt(0) & (shardCount - 1)

/**
 * For any other string: a multiplicative hash of the length and the last
 * eight characters, where ids that differ usually do (counters, random
 * suffixes), so the cost stays O(1) however long the key.
 */
export const byTail: ShardOf = (key) => {
  let hash = key.length
  for (let i = Math.max(0, key.length - 8); i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x9e3779b1)
  return hash >>> 26
}

/** A `Map<string, V>` in 64 shards. */
export class ShardedMap<V> {
  private readonly shards: ReadonlyArray<Map<string, V>> = Array.from({ length: shardCount }, () => new Map())
  private count = 0

  constructor(private readonly shardOf: ShardOf) {}

  get size(): number {
    return this.count
  }

  get(key: string): V | undefined {
    return this.shards[this.shardOf(key)]!.get(key)
  }

  has(key: string): boolean {
    return this.shards[this.shardOf(key)]!.has(key)
  }

  set(key: string, value: V): this {
    const shard = this.shards[this.shardOf(key)]!
    const before = shard.size
    shard.set(key, value)
    this.count += shard.size - before
    return this
  }

  delete(key: string): boolean {
    if (!this.shards[this.shardOf(key)]!.delete(key)) return false
    this.count--
    return true
  }

  /** Every value, shard by shard; like a `Map`'s, the iterator tolerates deletions as it goes. */
  *values(): IterableIterator<V> {
    for (const shard of this.shards) yield* shard.values()
  }
}
