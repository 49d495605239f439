/**
 * The memory store's live credentials by the SHA-256 digest of their token:
 * the one index a lookup reads, on every request.
 *
 * A `Map` keyed by the digest string cost a lookup four cold cache lines in a
 * busy server (bucket, entry, the key string, the value) plus hashing the
 * string again. Here the digest's own bytes are the hash: each shard is an
 * open-addressed table whose slot holds two of the digest's 32-bit words in
 * an `Int32Array` beside its value, so a probe reads no object, and only a
 * slot whose words agree reads its value's key to compare the whole digest.
 * Linear probing with backward-shift deletion leaves no deleted slots to
 * step over. Split 64 ways, as `ShardedMap` is and for the same reason: no
 * resize ever moves more than a 64th of the index at once.
 *
 * It does not iterate: every credential it holds is in the store's `byId`
 * index too, which does, and tolerates removals as it goes.
 */

/** Word `i` (big-endian) of a digest held as a 32-character binary string. */
const wordOf = (key: string, i: number): number =>
  (key.charCodeAt(i * 4) << 24) | (key.charCodeAt(i * 4 + 1) << 16) | (key.charCodeAt(i * 4 + 2) << 8) |
  key.charCodeAt(i * 4 + 3)

/** What the index holds: a value that knows its digest, as a 32-character binary string. */
export interface Keyed {
  readonly key: string
}

const shardBits = 6
const minCapacity = 16

class Shard<V extends Keyed> {
  /** Per slot: the digest's word 1 (where it probes from) and word 2. */
  words: Int32Array
  values: Array<V | undefined>
  mask: number
  size = 0

  constructor(capacity: number) {
    this.words = new Int32Array(capacity * 2)
    this.values = new Array<V | undefined>(capacity).fill(undefined)
    this.mask = capacity - 1
  }
}

/** A set of `Keyed` values, found by their digest (`BearerToken.lookupKey`'s binary string). */
export class DigestIndex<V extends Keyed> {
  private readonly shards: ReadonlyArray<Shard<V>> = Array.from({ length: 1 << shardBits }, () => new Shard<V>(minCapacity))
  private count = 0

  get size(): number {
    return this.count
  }

  // The digest's top bits: its first byte's, as a 32-character binary string holds it.
  private shardOf(key: string): Shard<V> {
    return this.shards[key.charCodeAt(0) >>> (8 - shardBits)]!
  }

  /** The value whose digest (a 32-character binary string) is `key`. */
  get(key: string): V | undefined {
    return this.find(key)
  }

  /** Whether a value with this digest is held. */
  has(key: string): boolean {
    return this.find(key) !== undefined
  }

  private find(key: string): V | undefined {
    const shard = this.shardOf(key)
    const w1 = wordOf(key, 1)
    const w2 = wordOf(key, 2)
    const mask = shard.mask
    for (let slot = w1 & mask;; slot = (slot + 1) & mask) {
      const value = shard.values[slot]
      if (value === undefined) return undefined
      if (shard.words[slot * 2] === w1 && shard.words[slot * 2 + 1] === w2 && value.key === key) return value
    }
  }

  /** Adds a value whose digest is not held yet. */
  add(value: V): void {
    const shard = this.shardOf(value.key)
    if ((shard.size + 1) * 2 > shard.values.length) this.resize(shard, shard.values.length * 2)
    place(shard, wordOf(value.key, 1), wordOf(value.key, 2), value)
    shard.size++
    this.count++
  }

  /** Removes this very value; whether it was held. */
  delete(value: V): boolean {
    const shard = this.shardOf(value.key)
    const mask = shard.mask
    let slot = wordOf(value.key, 1) & mask
    while (shard.values[slot] !== value) {
      if (shard.values[slot] === undefined) return false
      slot = (slot + 1) & mask
    }
    // Backward shift: each later value of the run moves into the hole unless
    // the hole lies before the slot it probes from (then it must stay put).
    let hole = slot
    for (let next = (hole + 1) & mask; shard.values[next] !== undefined; next = (next + 1) & mask) {
      const home = shard.words[next * 2]! & mask
      if (((next - home) & mask) >= ((next - hole) & mask)) {
        shard.values[hole] = shard.values[next]
        shard.words[hole * 2] = shard.words[next * 2]!
        shard.words[hole * 2 + 1] = shard.words[next * 2 + 1]!
        hole = next
      }
    }
    shard.values[hole] = undefined
    shard.words[hole * 2] = 0
    shard.words[hole * 2 + 1] = 0
    shard.size--
    this.count--
    // Shrinks once an eighth full, so a mass expiry hands its memory back.
    if (shard.size * 8 < shard.values.length && shard.values.length > minCapacity) {
      this.resize(shard, shard.values.length / 2)
    }
    return true
  }

  /**
   * The longest run of occupied slots in any shard: the most a probe can
   * step over, for the tests that bound it.
   *
   * @internal
   */
  longestRun(): number {
    let longest = 0
    for (const shard of this.shards) {
      const capacity = shard.values.length
      // From a free slot, so a run that wraps round the end is counted whole.
      const start = shard.values.indexOf(undefined)
      let run = 0
      for (let i = 1; i <= capacity; i++) {
        if (shard.values[(start + i) % capacity] === undefined) run = 0
        else if (++run > longest) longest = run
      }
    }
    return longest
  }

  private resize(shard: Shard<V>, capacity: number): void {
    const { values, words } = shard
    shard.words = new Int32Array(capacity * 2)
    shard.values = new Array<V | undefined>(capacity).fill(undefined)
    shard.mask = capacity - 1
    for (let slot = 0; slot < values.length; slot++) {
      const value = values[slot]
      if (value !== undefined) place(shard, words[slot * 2]!, words[slot * 2 + 1]!, value)
    }
  }
}

// Puts a value in the first free slot of its run; the caller counts it.
const place = <V extends Keyed>(shard: Shard<V>, w1: number, w2: number, value: V): void => {
  let slot = w1 & shard.mask
  while (shard.values[slot] !== undefined) slot = (slot + 1) & shard.mask
  shard.values[slot] = value
  shard.words[slot * 2] = w1
  shard.words[slot * 2 + 1] = w2
}
