/**
 * Shared tools of the hardening suite: a seeded random source, so a failing
 * run can be replayed, a recorder of revocation events, a fiber tracker built
 * on Effect's runtime-metrics hook, and a reader of the registry's metrics.
 */
import { Effect, Metric } from "effect"
import type { Revocation } from "../../src/index.ts"

/** A small seeded PRNG (mulberry32): the same seed replays the same run. */
export const seeded = (seed: number) => {
  let state = seed >>> 0
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (n: number): number => Math.floor(next() * n)
  const pick = <A>(values: ReadonlyArray<A>): A => values[int(values.length)]!
  return { next, int, pick }
}

/** Records every revocation event a hook sees. */
export const recorder = () => {
  const events: Array<Revocation.RevocationEvent> = []
  const hook: Revocation.RevocationHook = (event) => Effect.sync(() => void events.push(event))
  const byCredential = () => {
    const out = new Map<string, Array<string>>()
    for (const event of events) {
      const id = event.credential.credentialId
      out.set(id, [...(out.get(id) ?? []), event.reason])
    }
    return out
  }
  return { events, hook, byCredential }
}

/**
 * Counts the fibers started and ended under it, through the runtime's own
 * fiber lifecycle hook (`Metric.FiberRuntimeMetrics`): a fiber still counted
 * as active after the registry closed has leaked.
 */
export const fiberTracker = () => {
  let started = 0
  let ended = 0
  const service: Metric.FiberRuntimeMetricsService = {
    recordFiberStart: () => void started++,
    recordFiberEnd: () => void ended++
  }
  const track = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.provideService(effect, Metric.FiberRuntimeMetrics, service)
  return {
    track,
    get started() {
      return started
    },
    get active() {
      return started - ended
    }
  }
}

/** Reads one of the registry's metrics from the current registry snapshot. */
export const metricValue = (id: string, attributes: Record<string, string> = {}) =>
  Effect.map(Metric.snapshot, (snapshot) => {
    const found = snapshot.find((s) =>
      s.id === id && Object.entries(attributes).every(([k, v]) => s.attributes?.[k] === v)
    )
    if (found === undefined) return undefined
    const state = found.state as { readonly count?: number; readonly value?: number }
    return state.count ?? state.value
  })
