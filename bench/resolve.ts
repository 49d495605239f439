/**
 * Measurement 1: `resolve` throughput through the service, beside the floor,
 * `lru-cache` and the naive design, on the same tokens in the same order.
 *
 * The registry is called the way a host calls it: `yield*` inside an Effect
 * program. The others are plain loops, timed inside the same program. One
 * more contender, the floor's lookup wrapped in `Effect.sync` and yielded the
 * same way, shows how much of the gap to the floor is Effect's own cost per
 * `yield*`.
 * Two more take no fiber at all, as hosts without Effect and the node/Web
 * guards call the registry: the Promise registry's `resolve`, awaited in a
 * plain async loop, and the memory store's synchronous check the guards use
 * (`syncLookup`). Both run on the same registry as the Effect contender.
 * Every size is measured under two draws of the presented tokens (seeded, the
 * same for every contender):
 *
 * - `active`: requests come, in random order, from the 1,000 credentials
 *   issued last: the agents at work, while the sessions before them sit idle
 *   until their idle timeout. What stays equal across sizes is the traffic,
 *   so this shows what the number of live credentials costs on its own: the
 *   flatness goal is judged on it. (A thousand credentials picked at random
 *   over a 1e6 population were tried first: they span more memory pages than
 *   the TLB holds, and every contender, the floor included, lost 6x.)
 * - `uniform`: every request from a credential drawn from all the live ones,
 *   the worst case for the CPU caches. At 1e6 each lookup then misses the
 *   caches several times (token, table slot, key, record), for every
 *   contender alike, so this curve measures the machine's memory latency.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import { type SyncLookup, syncLookup } from "../src/internal/syncLookup.ts"
import * as McpSessionRegistry from "../src/McpSessionRegistry.ts"
import { createRegistry, type Registry } from "../src/promise/index.ts"
import * as Contenders from "./contenders.ts"
import type { Contender, Throughput, Timing } from "./harness.ts"
import { alone, interleaved, random } from "./harness.ts"
import { optionsFor, populate } from "./population.ts"

/** The idle timeout every contender enforces: the registry's default. */
const idleMillis = 30 * 60 * 1000

/** How the presented tokens are drawn from the live ones. */
export type Draw = "active" | "uniform"

/** The credentials the `active` draw presents. */
export const activeCredentials = 1000

/** What one draw at one size measured. */
export interface DrawResult {
  readonly opsPerSecond: {
    readonly registry: number
    readonly floor: number
    /** The floor's lookup as one `Effect.sync` yielded from the same kind of loop: what Effect alone costs. */
    readonly floorInEffect: number
    readonly lruCache: number
    readonly naive: number
    /** The Promise registry's `resolve`, awaited: no fiber. */
    readonly promiseRegistry: number
    /** The synchronous check the node/Web guards call: no fiber, no Promise. */
    readonly syncCheck: number
  }
  readonly ratios: {
    readonly floor: number
    readonly floorInEffect: number
    readonly lruCache: number
    readonly naive: number
    /** `promiseRegistry / floor`, not `registry / ...` like the others. */
    readonly promiseRegistryToFloor: number
    /** `syncCheck / floor`. */
    readonly syncCheckToFloor: number
  }
  readonly samples: Record<string, ReadonlyArray<number>>
}

/** What one size measured, under both draws. */
export interface ResolveResult {
  readonly size: number
  /**
   * The registry under the active draw, timed before the other contenders
   * exist: a heap that holds the registry and nothing else, as a host's does.
   */
  readonly alone: Throughput
  readonly active: DrawResult
  readonly uniform: DrawResult
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

/** The registry, called the way a host calls it: `yield*` inside one Effect program. */
export const viaService = (
  registry: McpSessionRegistry.McpSessionRegistry["Service"],
  tokens: ReadonlyArray<string>,
  order: Uint32Array
): Contender => {
  const mask = order.length - 1
  return {
    name: "registry",
    run: (from, ops) =>
      Effect.gen(function*() {
        for (let i = 0; i < ops; i++) yield* registry.resolve(tokens[order[(from + i) & mask]!]!)
      })
  }
}

/** The Promise registry's `resolve`, awaited one call after another in a plain async loop. */
export const viaPromise = (registry: Registry, tokens: ReadonlyArray<string>, order: Uint32Array): Contender => {
  const mask = order.length - 1
  return {
    name: "promise registry",
    run: (from, ops) =>
      Effect.promise(async () => {
        for (let i = 0; i < ops; i++) await registry.resolve(tokens[order[(from + i) & mask]!]!)
      })
  }
}

/** The memory store's synchronous check, as the node/Web guards call it. */
export const viaSyncCheck = (lookup: SyncLookup, tokens: ReadonlyArray<string>, order: Uint32Array): Contender => {
  const mask = order.length - 1
  return {
    name: "sync check",
    run: (from, ops) =>
      Effect.sync(() => {
        for (let i = 0; i < ops; i++) {
          // Told apart as the guards tell them (`"_tag" in`), not by `instanceof`,
          // which costs more than the floor's whole `Map` read.
          if ("_tag" in lookup.lookup(tokens[order[(from + i) & mask]!]!)) {
            throw new Error("sync check: live token refused")
          }
        }
      })
  }
}

/** A power-of-two sequence of indices into `tokens`, long enough that batches rarely repeat it. */
export const drawOrder = (draw: Draw, size: number): Uint32Array => {
  // Seeded per draw and size, so every run draws the same tokens.
  const next = random(draw === "uniform" ? size : size + 1)
  const pool = draw === "uniform" || size <= activeCredentials
    ? undefined
    : Uint32Array.from({ length: activeCredentials }, (_, i) => size - activeCredentials + i)
  const order = new Uint32Array(1 << 20)
  for (let i = 0; i < order.length; i++) {
    order[i] = pool === undefined ? Math.floor(next() * size) : pool[Math.floor(next() * pool.length)]!
  }
  return order
}

const measureDraw = (
  registry: McpSessionRegistry.McpSessionRegistry["Service"],
  promiseRegistry: Registry,
  lookup: SyncLookup,
  contenders: {
    readonly floor: Contenders.PlainResolver
    readonly lruCache: Contenders.PlainResolver
    readonly naive: Contenders.PlainResolver
  },
  tokens: ReadonlyArray<string>,
  order: Uint32Array,
  timing: Timing
): Effect.Effect<DrawResult, unknown> =>
  Effect.gen(function*() {
    const mask = order.length - 1
    const floorInEffect: Contender = {
      name: "floor in Effect",
      run: (from, ops) =>
        Effect.gen(function*() {
          for (let i = 0; i < ops; i++) {
            const token = tokens[order[(from + i) & mask]!]!
            if ((yield* Effect.sync(() => contenders.floor.resolve(token))) === undefined) {
              throw new Error("floor: live token refused")
            }
          }
        })
    }
    const result: Record<string, Throughput> = yield* interleaved([
      viaService(registry, tokens, order),
      plain("floor", contenders.floor, tokens, order),
      floorInEffect,
      plain("lru-cache", contenders.lruCache, tokens, order),
      plain("naive", contenders.naive, tokens, order),
      viaPromise(promiseRegistry, tokens, order),
      viaSyncCheck(lookup, tokens, order)
    ], timing)
    const ops = {
      registry: result["registry"]!.opsPerSecond,
      floor: result["floor"]!.opsPerSecond,
      floorInEffect: result["floor in Effect"]!.opsPerSecond,
      lruCache: result["lru-cache"]!.opsPerSecond,
      naive: result["naive"]!.opsPerSecond,
      promiseRegistry: result["promise registry"]!.opsPerSecond,
      syncCheck: result["sync check"]!.opsPerSecond
    }
    return {
      opsPerSecond: ops,
      ratios: {
        floor: ops.registry / ops.floor,
        floorInEffect: ops.registry / ops.floorInEffect,
        lruCache: ops.registry / ops.lruCache,
        naive: ops.registry / ops.naive,
        promiseRegistryToFloor: ops.promiseRegistry / ops.floor,
        syncCheckToFloor: ops.syncCheck / ops.floor
      },
      samples: Object.fromEntries(Object.entries(result).map(([name, throughput]) => [name, throughput.samples]))
    }
  })

/** Measures one size: fills a registry and the three others with the same `size` credentials. */
export const measure = (size: number, timing: Timing): Effect.Effect<ResolveResult, unknown> =>
  Effect.scoped(Effect.gen(function*() {
    // Built as a host without Effect builds it; the Effect contender uses the
    // very service underneath, so all three registry contenders share one store.
    const promiseRegistry = yield* Effect.acquireRelease(
      Effect.promise(() => createRegistry(optionsFor(size))),
      (registry) => Effect.promise(() => registry.close())
    )
    const registry = Context.get(yield* Effect.promise(() => promiseRegistry.runtime.context()), McpSessionRegistry.McpSessionRegistry)
    const lookup = syncLookup(registry)
    if (lookup === undefined) return yield* Effect.die(new Error("the memory registry has no synchronous check"))
    const tokens = yield* populate(registry, size)
    const activeOrder = drawOrder("active", size)
    // Before the others are built: at 1e6 they hold three more copies of the
    // population, and V8 charges the marking of that heap to whoever
    // allocates, which an Effect call does and a bare Map lookup does not.
    const aloneResult = yield* alone(viaService(registry, tokens, activeOrder), timing)
    const contenders = {
      floor: Contenders.floor(tokens),
      lruCache: Contenders.lruCache(tokens, idleMillis),
      naive: Contenders.naive(tokens, idleMillis)
    }
    const active = yield* measureDraw(registry, promiseRegistry, lookup, contenders, tokens, activeOrder, timing)
    const uniform = yield* measureDraw(registry, promiseRegistry, lookup, contenders, tokens, drawOrder("uniform", size), timing)
    return { size, alone: aloneResult, active, uniform }
  }))
