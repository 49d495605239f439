/**
 * Measurement 1, flatness: `resolve` through registries of every size at once,
 * timed in the same interleaved rounds under the active draw.
 *
 * Timed one size after another, a registry's throughput moves with what
 * changes between the measurements besides its size: this machine's speed,
 * which drifts by up to 2x within minutes, and the heap around it, whose
 * marking V8 charges to whoever allocates. Built side by side, every registry
 * lives in the same heap and meets the same load from elsewhere, so the only
 * thing that differs between them is how many credentials each one holds:
 * what the flatness goal asks about.
 */
import * as Effect from "effect/Effect"
import * as McpSessionRegistry from "../src/McpSessionRegistry.ts"
import type { Contender, Throughput, Timing } from "./harness.ts"
import { interleaved } from "./harness.ts"
import { optionsFor, populate } from "./population.ts"
import { drawOrder, viaService } from "./resolve.ts"

/** What the side-by-side rounds measured. */
export interface FlatnessResult {
  readonly sizes: ReadonlyArray<number>
  /** The registry of each size, in the order of `sizes`. */
  readonly throughput: ReadonlyArray<Throughput>
  /** The slowest size's ops/s over the fastest's. */
  readonly spread: number
}

/** Fills one registry per size, then times them all in the same rounds. */
export const measure = (sizes: ReadonlyArray<number>, timing: Timing): Effect.Effect<FlatnessResult, unknown> =>
  Effect.scoped(Effect.gen(function*() {
    const contenders: Array<Contender> = []
    for (const size of sizes) {
      const registry = yield* McpSessionRegistry.make(optionsFor(size))
      const tokens = yield* populate(registry, size)
      contenders.push({ ...viaService(registry, tokens, drawOrder("active", size)), name: `registry at ${size}` })
    }
    const result = yield* interleaved(contenders, timing)
    const throughput = sizes.map((size) => result[`registry at ${size}`]!)
    const ops = throughput.map((t) => t.opsPerSecond)
    return { sizes, throughput, spread: Math.min(...ops) / Math.max(...ops) }
  }))
