/**
 * Measurement 2: `issue` throughput, and what `revokeThread` costs for a
 * thread of 1 and of 100 credentials.
 *
 * Every issue mints for a new thread and provider pair, so none replaces
 * another: the figure is the cost of minting, digesting and indexing. The
 * revocations run against a background of live credentials of other threads;
 * only the `revokeThread` calls are timed, not the issues that set them up.
 */
import * as Effect from "effect/Effect"
import * as References from "effect/References"
import * as McpSessionRegistry from "../src/McpSessionRegistry.ts"
import type { Timing } from "./harness.ts"
import { collectGarbage, interleaved, median, timed } from "./harness.ts"
import { optionsFor, populate, providers, threadOf } from "./population.ts"

/** `revokeThread` for threads of one size. */
export interface RevokeThreadResult {
  readonly credentialsPerThread: number
  /** Median time of one call. */
  readonly microsPerCall: number
  readonly callsPerSecond: number
  readonly samples: ReadonlyArray<number>
}

/** What measurement 2 found. */
export interface IssueResult {
  readonly issuesPerSecond: number
  readonly issueSamples: ReadonlyArray<number>
  /** The same with Effect's tracing off (`References.TracerEnabled`), which skips the `issue` span. */
  readonly untracedIssuesPerSecond: number
  readonly revokeThread: ReadonlyArray<RevokeThreadResult>
}

/**
 * Issue throughput into registries that grow as they go (no cap is reached):
 * as built, and with tracing off, timed in the same rounds.
 */
const issueThroughput = (timing: Timing, capacity: number) =>
  Effect.scoped(Effect.gen(function*() {
    const contender = Effect.fnUntraced(function*(name: string, tracing: boolean) {
      const registry = yield* McpSessionRegistry.make(optionsFor(capacity))
      let next = 0
      return {
        name,
        run: (_from: number, ops: number) =>
          Effect.gen(function*() {
            for (let i = 0; i < ops; i++, next++) {
              yield* registry.issue({ threadId: threadOf(next), providerInstanceId: providers[next & 3]! })
            }
          }).pipe(Effect.provideService(References.TracerEnabled, tracing))
      }
    })
    return yield* interleaved([yield* contender("issue", true), yield* contender("issue, tracing off", false)], timing)
  }))

const revokeThreadCost = (perThread: number, threads: number, rounds: number, background: number) =>
  Effect.scoped(Effect.gen(function*() {
    const registry = yield* McpSessionRegistry.make(optionsFor(background + perThread * threads))
    yield* populate(registry, background, false)
    const samples: Array<number> = []
    for (let round = -1; round < rounds; round++) {
      const ids: Array<string> = []
      for (let t = 0; t < threads; t++) {
        const threadId = `revoked-${round}-${t}`
        ids.push(threadId)
        for (let k = 0; k < perThread; k++) {
          yield* registry.issue({ threadId, providerInstanceId: `provider-${k}` })
        }
      }
      collectGarbage()
      const millis = yield* timed(Effect.gen(function*() {
        for (const threadId of ids) {
          const revoked = yield* registry.revokeThread(threadId)
          if (revoked !== perThread) throw new Error(`revokeThread revoked ${revoked} of ${perThread}`)
        }
      }))
      // Round -1 is the warm-up.
      if (round >= 0) samples.push((millis * 1000) / threads)
    }
    const micros = median(samples)
    return { credentialsPerThread: perThread, microsPerCall: micros, callsPerSecond: 1e6 / micros, samples }
  }))

/** Measures issue throughput and `revokeThread` for threads of 1 and 100 credentials. */
export const measure = (
  timing: Timing,
  options: { readonly revokeCredentials: number; readonly background: number }
): Effect.Effect<IssueResult, unknown> =>
  Effect.gen(function*() {
    const issued = yield* issueThroughput(timing, 4_000_000)
    const traced = issued["issue"]!
    const untraced = issued["issue, tracing off"]!
    const revokeThread: Array<RevokeThreadResult> = []
    for (const perThread of [1, 100]) {
      const threads = Math.max(1, Math.floor(options.revokeCredentials / perThread))
      revokeThread.push(yield* revokeThreadCost(perThread, threads, timing.rounds, options.background))
    }
    return {
      issuesPerSecond: traced.opsPerSecond,
      issueSamples: traced.samples,
      untracedIssuesPerSecond: untraced.opsPerSecond,
      revokeThread
    }
  })
