/**
 * Measurement 4: the longest event-loop stall while the sweeper reclaims
 * `size` credentials that are all dead.
 *
 * The registry is filled under a short idle timeout (one second) with its background
 * sweeper parked (one-hour interval); once the last credential has gone idle,
 * the heap is collected (the garbage of filling it is not the sweep's) and
 * `sweep`, the very effect the background sweeper runs, reclaims them all
 * while `monitorEventLoopDelay` samples the loop every millisecond. GC pauses
 * are recorded alongside, to tell the registry's own work from V8's: a 1 ms
 * timer's longest gap that no GC pause overlapped is reported beside.
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
  /**
   * The longest gap between two firings of a 1 ms timer that no GC pause
   * overlapped: the stall the sweep's own work (and the machine) caused.
   */
  readonly longestStallWithoutGcMillis: number
}

// One credential per thread: `issue` reclaims the dead credentials of the
// thread it issues to, so with shared threads a GC pause longer than the idle
// timeout in the middle of the fill let `issue`, not the sweep, reclaim a few
// of them (seen with the smoke run's 50 ms timeout).
const ownThread = (i: number): string => `sweep-${i}`

/** Fills a registry with `size` credentials, lets them all go idle (after `idleMillis`), and sweeps. */
export const measure = (size: number, idleMillis = 1000): Effect.Effect<SweepResult, unknown> =>
  Effect.scoped(Effect.gen(function*() {
    const options = optionsFor(size, { idleTimeout: idleMillis, sweepInterval: "1 hour" })
    // Warm-up: a host's sweeper runs every minute, so its code is compiled and
    // optimized long before a mass expiry. A first sweep of a small registry
    // here keeps the JIT's first passes out of the stall measured below.
    const warmup = yield* McpSessionRegistry.make(options)
    yield* populate(warmup, Math.min(size, 50_000), false, ownThread)
    const registry = yield* McpSessionRegistry.make(options)
    yield* populate(registry, size, false, ownThread)
    yield* Effect.sleep(idleMillis + 50)
    yield* warmup.sweep
    collectGarbage()
    const histogram = monitorEventLoopDelay({ resolution: 1 })
    const pauses: Array<{ readonly start: number; readonly end: number }> = []
    const observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) pauses.push({ start: entry.startTime, end: entry.startTime + entry.duration })
    })
    observer.observe({ entryTypes: ["gc"] })
    const fires: Array<number> = []
    let timer: ReturnType<typeof setTimeout> | undefined
    const tick = () => {
      fires.push(performance.now())
      timer = setTimeout(tick, 1)
    }
    tick()
    histogram.enable()
    let reclaimed = 0
    const sweepMillis = yield* timed(Effect.map(registry.sweep, (n) => void (reclaimed = n)))
    // Lets the sampling timer fire once more, so a stall at the very end is recorded too.
    yield* Effect.sleep(5)
    histogram.disable()
    clearTimeout(timer)
    // Entries are delivered asynchronously: one more turn collects the last ones.
    yield* Effect.sleep(5)
    observer.disconnect()
    let longestStallWithoutGcMillis = 0
    for (let i = 1; i < fires.length; i++) {
      const from = fires[i - 1]!
      const to = fires[i]!
      if (!pauses.some((pause) => pause.start < to && pause.end > from)) {
        longestStallWithoutGcMillis = Math.max(longestStallWithoutGcMillis, to - from)
      }
    }
    if (reclaimed !== size) throw new Error(`sweep reclaimed ${reclaimed} of ${size}`)
    return {
      size,
      reclaimed,
      sweepMillis,
      maxStallMillis: histogram.max / 1e6,
      p99StallMillis: histogram.percentile(99) / 1e6,
      longestGcPauseMillis: pauses.length === 0 ? 0 : Math.max(...pauses.map((pause) => pause.end - pause.start)),
      gcPauses: pauses.length,
      longestStallWithoutGcMillis
    }
  }))
