/**
 * Timing for the benchmark suite: interleaved rounds, warm-up, medians.
 *
 * The machine the suite runs on is shared and noisy, so contenders that are
 * compared with each other are timed in the same rounds, one batch each, in
 * an order that rotates from round to round: a burst of load from elsewhere
 * then hits every contender of a round instead of one of them. Each batch is
 * preceded by a full GC (when `--expose-gc` is on) so that one contender's
 * garbage is not collected on another's time.
 */
import * as Effect from "effect/Effect"

/** One side of a comparison: runs `ops` operations starting at `from` in the shared input sequence. */
export interface Contender {
  readonly name: string
  readonly run: (from: number, ops: number) => Effect.Effect<void, unknown>
}

/** How long and how often to time. */
export interface Timing {
  /** Untimed time per contender before the rounds, for the JIT and to size the batches. */
  readonly warmupMillis: number
  /** The wall time one timed batch aims at. */
  readonly batchMillis: number
  /** Timed batches per contender; the median is reported. */
  readonly rounds: number
}

/** The ops/s of every timed batch of a contender, and their median. */
export interface Throughput {
  readonly opsPerSecond: number
  readonly samples: ReadonlyArray<number>
}

/** The middle value (mean of the two middle ones for an even count). */
export const median = (values: ReadonlyArray<number>): number => {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** Full collections when the process runs with `--expose-gc`; nothing otherwise. */
export const collectGarbage = (times = 1): void => {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc !== undefined) for (let i = 0; i < times; i++) gc()
}

/** Whether `--expose-gc` is on, which the memory figure needs. */
export const canCollectGarbage = (): boolean => typeof (globalThis as { gc?: unknown }).gc === "function"

/** mulberry32: a small seeded PRNG, so every run draws the same inputs. */
export const random = (seed: number): () => number => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Milliseconds from the monotonic clock. */
export const now: Effect.Effect<number> = Effect.sync(() => performance.now())

/** Times one batch, in milliseconds. */
export const timed = <E>(effect: Effect.Effect<void, E>): Effect.Effect<number, E> =>
  Effect.gen(function*() {
    const start = yield* now
    yield* effect
    return (yield* now) - start
  })

/**
 * Times every contender in interleaved rounds and reports the median ops/s of
 * each. Batch sizes are set per contender from its warm-up rate so that each
 * batch takes about `batchMillis`; every batch starts at the same position of
 * the shared input sequence, so all contenders see the same inputs.
 */
export const interleaved = Effect.fnUntraced(function*(
  contenders: ReadonlyArray<Contender>,
  timing: Timing
): Effect.fn.Return<Record<string, Throughput>, unknown> {
  const batch: Array<number> = []
  for (const contender of contenders) {
    let ops = 1
    let spent = 0
    let done = 0
    while (spent < timing.warmupMillis) {
      const millis = yield* timed(contender.run(done, ops))
      spent += millis
      done += ops
      if (millis < timing.warmupMillis / 8) ops *= 2
    }
    const rate = done / Math.max(spent, 0.001)
    batch.push(Math.max(1, Math.round(rate * timing.batchMillis)))
  }
  const samples: Array<Array<number>> = contenders.map(() => [])
  for (let round = 0; round < timing.rounds; round++) {
    const from = round * 7919
    for (let k = 0; k < contenders.length; k++) {
      const i = (k + round) % contenders.length
      collectGarbage()
      const millis = yield* timed(contenders[i]!.run(from, batch[i]!))
      samples[i]!.push((batch[i]! / Math.max(millis, 0.001)) * 1000)
    }
  }
  const out: Record<string, Throughput> = {}
  contenders.forEach((contender, i) => {
    out[contender.name] = { opsPerSecond: median(samples[i]!), samples: samples[i]! }
  })
  return out
})

/** Median ops/s of one contender timed alone. */
export const alone = (contender: Contender, timing: Timing): Effect.Effect<Throughput, unknown> =>
  Effect.map(interleaved([contender], timing), (result) => result[contender.name]!)
