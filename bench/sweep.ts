/**
 * Measurement 4: the longest event-loop stall while the sweeper reclaims
 * `size` credentials that are all dead.
 *
 * The registry is filled under a short idle timeout (one second) with its background
 * sweeper parked (one-hour interval); once the last credential has gone idle,
 * the heap is collected (the garbage of filling it is not the sweep's) and
 * `sweep`, the very effect the background sweeper runs, reclaims them all
 * while `monitorEventLoopDelay` samples the loop every millisecond. GC pauses
 * are recorded alongside, to tell the registry's own work from V8's.
 */
import * as Effect from "effect/Effect"
import { monitorEventLoopDelay, PerformanceObserver } from "node:perf_hooks"
import * as McpSessionRegistry from "../src/McpSessionRegistry.ts"
import { collectGarbage, timed } from "./harness.ts"
import { optionsFor, populate } from "./population.ts"

/** What measurement 4 found. */
export interface SweepResult {
  readonly size: number
  readonly reclaimed: number
  readonly sweepMillis: number
  /** The longest event-loop delay seen while sweeping. */
  readonly maxStallMillis: number
  readonly p99StallMillis: number
  /** The longest garbage-collection pause during the sweep, and how many there were: the part of a stall that is V8's. */
  readonly longestGcPauseMillis: number
  readonly gcPauses: number
}

/** Fills a registry with `size` credentials, lets them all go idle (after `idleMillis`), and sweeps. */
export const measure = (size: number, idleMillis = 1000): Effect.Effect<SweepResult, unknown> =>
  Effect.scoped(Effect.gen(function*() {
    const registry = yield* McpSessionRegistry.make(
      optionsFor(size, { idleTimeout: idleMillis, sweepInterval: "1 hour" })
    )
    yield* populate(registry, size, false)
    yield* Effect.sleep(idleMillis + 50)
    collectGarbage()
    const histogram = monitorEventLoopDelay({ resolution: 1 })
    const pauses: Array<number> = []
    const observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) pauses.push(entry.duration)
    })
    observer.observe({ entryTypes: ["gc"] })
    histogram.enable()
    let reclaimed = 0
    const sweepMillis = yield* timed(Effect.map(registry.sweep, (n) => void (reclaimed = n)))
    // Lets the sampling timer fire once more, so a stall at the very end is recorded too.
    yield* Effect.sleep(5)
    histogram.disable()
    // Entries are delivered asynchronously: one more turn collects the last ones.
    yield* Effect.sleep(5)
    observer.disconnect()
    if (reclaimed !== size) throw new Error(`sweep reclaimed ${reclaimed} of ${size}`)
    return {
      size,
      reclaimed,
      sweepMillis,
      maxStallMillis: histogram.max / 1e6,
      p99StallMillis: histogram.percentile(99) / 1e6,
      longestGcPauseMillis: pauses.length === 0 ? 0 : Math.max(...pauses),
      gcPauses: pauses.length
    }
  }))
