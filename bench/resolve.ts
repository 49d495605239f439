/**
 * Measurement 1: `resolve` throughput through the service, beside the floor,
 * `lru-cache` and the naive design, on the same tokens in the same order.
 *
 * The registry is called the way a host calls it: `yield*` inside an Effect
 * program. The others are plain loops, timed inside the same program. One
 * more contender, the floor's lookup wrapped in `Effect.sync` and yielded the
 * same way, shows how much of the gap to the floor is Effect's own cost per
 * `yield*`.
 * Lookups draw credentials uniformly at random (seeded), so at large sizes
 * every contender pays the same cache misses.
 */
import * as Effect from "effect/Effect"
import * as McpSessionRegistry from "../src/McpSessionRegistry.ts"
import * as Contenders from "./contenders.ts"
import type { Contender, Throughput, Timing } from "./harness.ts"
import { interleaved, random } from "./harness.ts"
import { optionsFor, populate } from "./population.ts"

/** The idle timeout every contender enforces: the registry's default. */
const idleMillis = 30 * 60 * 1000

/** What one size measured. */
export interface ResolveResult {
  readonly size: number
  readonly opsPerSecond: {
    readonly registry: number
    readonly floor: number
    /** The floor's lookup as one `Effect.sync` yielded from the same kind of loop: what Effect alone costs. */
    readonly floorInEffect: number
    readonly lruCache: number
    readonly naive: number
  }
  readonly ratios: {
    readonly floor: number
    readonly floorInEffect: number
    readonly lruCache: number
    readonly naive: number
  }
  readonly samples: Record<string, ReadonlyArray<number>>
}

const plain = (name: string, resolver: Contenders.PlainResolver, tokens: ReadonlyArray<string>, order: Uint32Array): Contender => {
  const mask = order.length - 1
  return {
    name,
    run: (from, ops) =>
      Effect.sync(() => {
        for (let i = 0; i < ops; i++) {
          if (resolver.resolve(tokens[order[(from + i) & mask]!]!) === undefined) throw new Error(`${name}: live token refused`)
        }
      })
  }
}

/** Measures one size: fills a registry and the three others with the same `size` credentials. */
export const measure = (size: number, timing: Timing): Effect.Effect<ResolveResult, unknown> =>
  Effect.scoped(Effect.gen(function*() {
    const registry = yield* McpSessionRegistry.make(optionsFor(size))
    const tokens = yield* populate(registry, size)
    // A power-of-two sequence of indices, long enough that batches rarely repeat it.
    const draw = random(size)
    const order = new Uint32Array(1 << 20)
    for (let i = 0; i < order.length; i++) order[i] = Math.floor(draw() * size)
    const mask = order.length - 1
    const viaService: Contender = {
      name: "registry",
      run: (from, ops) =>
        Effect.gen(function*() {
          for (let i = 0; i < ops; i++) yield* registry.resolve(tokens[order[(from + i) & mask]!]!)
        })
    }
    const floor = Contenders.floor(tokens)
    const floorInEffect: Contender = {
      name: "floor in Effect",
      run: (from, ops) =>
        Effect.gen(function*() {
          for (let i = 0; i < ops; i++) {
            const token = tokens[order[(from + i) & mask]!]!
            if ((yield* Effect.sync(() => floor.resolve(token))) === undefined) throw new Error("floor: live token refused")
          }
        })
    }
    const result: Record<string, Throughput> = yield* interleaved([
      viaService,
      plain("floor", floor, tokens, order),
      floorInEffect,
      plain("lru-cache", Contenders.lruCache(tokens, idleMillis), tokens, order),
      plain("naive", Contenders.naive(tokens, idleMillis), tokens, order)
    ], timing)
    const ops = {
      registry: result["registry"]!.opsPerSecond,
      floor: result["floor"]!.opsPerSecond,
      floorInEffect: result["floor in Effect"]!.opsPerSecond,
      lruCache: result["lru-cache"]!.opsPerSecond,
      naive: result["naive"]!.opsPerSecond
    }
    return {
      size,
      opsPerSecond: ops,
      ratios: {
        floor: ops.registry / ops.floor,
        floorInEffect: ops.registry / ops.floorInEffect,
        lruCache: ops.registry / ops.lruCache, naive: ops.registry / ops.naive
      },
      samples: Object.fromEntries(Object.entries(result).map(([name, throughput]) => [name, throughput.samples]))
    }
  }))
