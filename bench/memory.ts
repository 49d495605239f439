/**
 * Measurement 3: heap retained per live credential.
 *
 * The heap is measured after full collections before the registry exists
 * and again once it holds `size` live credentials; the tokens themselves are
 * dropped as soon as they are issued (a host hands them to child processes),
 * so the difference is what the registry keeps: entries, indexes, ids.
 */
import * as Effect from "effect/Effect"
import * as McpSessionRegistry from "../src/McpSessionRegistry.ts"
import { canCollectGarbage, collectGarbage } from "./harness.ts"
import { optionsFor, populate } from "./population.ts"

/** What measurement 3 found. */
export interface MemoryResult {
  readonly size: number
  readonly bytesPerCredential: number
  readonly heapUsedBefore: number
  readonly heapUsedAfter: number
  /** False when the process ran without `--expose-gc`: the figure then includes garbage. */
  readonly collected: boolean
}

/** Fills one registry with `size` credentials and divides the heap growth by `size`. */
export const measure = (size: number): Effect.Effect<MemoryResult, unknown> =>
  Effect.scoped(Effect.gen(function*() {
    collectGarbage(3)
    const heapUsedBefore = process.memoryUsage().heapUsed
    const registry = yield* McpSessionRegistry.make(optionsFor(size))
    yield* populate(registry, size, false)
    collectGarbage(3)
    const heapUsedAfter = process.memoryUsage().heapUsed
    // Keeps the registry reachable until the heap has been read.
    if ((yield* registry.list).length !== size) throw new Error("memory: credentials went missing")
    return {
      size,
      bytesPerCredential: (heapUsedAfter - heapUsedBefore) / size,
      heapUsedBefore,
      heapUsedAfter,
      collected: canCollectGarbage()
    }
  }))
