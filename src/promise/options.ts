/**
 * What `createRegistry` accepts: every option of the Effect layer, hooks as
 * plain (async) functions, and the choice of store.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redis from "effect/persistence/Redis"
import * as McpSessionRegistry from "../McpSessionRegistry.ts"
import * as RegistryConfig from "../RegistryConfig.ts"
import type { RevocationEvent, RevocationHook } from "../Revocation.ts"
import { layerOf as redisLayerOf, type RedisStore } from "./redisStore.ts"

/**
 * Runs once for every credential that leaves the registry while it is
 * registered. A plain function, an async one, or one returning an `Effect`;
 * one that throws, rejects or outlives `hookTimeout` is logged and abandoned,
 * never fatal.
 *
 * @since 0.1.0
 */
export type Hook = (event: RevocationEvent) => unknown

/**
 * The registry's options, as `McpSessionRegistry.layer` takes them, with hooks
 * that may be plain functions, plus `store`.
 *
 * @since 0.1.0
 */
export interface Options extends Omit<RegistryConfig.Options, "hooks"> {
  /**
   * Hooks that live as long as the registry, so they also see the `shutdown`
   * of every credential still live at `close()`.
   */
  readonly hooks?: ReadonlyArray<Hook> | undefined
  /**
   * Where credentials live: `"memory"` (the default) for one process, or
   * Redis for several replicas sharing one registry.
   */
  readonly store?: StoreOption | undefined
}

/**
 * The store choice. `"memory"`: this process only, the fastest, and the only
 * store with a lookup that needs no round trip. A `RedisStore`: the state in
 * Redis (or Valkey), shared by every registry on the same `keyPrefix`.
 *
 * @since 0.1.0
 */
export type StoreOption = "memory" | RedisStore

// A hook outside Effect returns nothing or a promise; the registry runs
// Effects, so each is wrapped once here. A throw becomes a defect of the
// hook's own fiber, which the registry logs like any failing hook.
const asRevocationHook = (hook: Hook): RevocationHook => (event) =>
  Effect.suspend(() => {
    const result = hook(event)
    if (Effect.isEffect(result)) return result as Effect.Effect<unknown, unknown>
    if (result !== null && typeof result === "object" && typeof (result as PromiseLike<unknown>).then === "function") {
      // The rejection itself is what the log shows, not a wrapper around it.
      return Effect.tryPromise({ try: () => Promise.resolve(result as PromiseLike<unknown>), catch: (error) => error })
    }
    return Effect.void
  }).pipe(Effect.asVoid)

/**
 * Wraps plain hooks for the registry. Anything that is not a function is
 * passed on as it is, so the layer's own validation names it.
 *
 * @internal
 */
export const toRevocationHook = (hook: Hook): RevocationHook =>
  typeof hook === "function" ? asRevocationHook(hook) : hook

/** A registry layer that fails with `error` when built. */
const refused = (error: RegistryConfig.RegistryConfigError) =>
  Layer.effect(McpSessionRegistry.McpSessionRegistry, Effect.fail(error))

// Names what was given without printing it: a mistyped store object may hold
// a Redis URL with its password, and so may a string (`store: REDIS_URL`).
const showStore = (store: unknown): string =>
  typeof store === "string"
    ? "<string>"
    : store !== null && typeof store === "object"
    ? `{ ${Object.keys(store).join(", ")} }`
    : String(store)

/**
 * The registry layer the options describe. Bad options fail it with a
 * `RegistryConfigError` naming the option.
 *
 * @internal
 */
export const layerOf = async (
  options: Options | undefined
): Promise<Layer.Layer<McpSessionRegistry.McpSessionRegistry, RegistryConfig.RegistryConfigError | Redis.RedisError>> => {
  if (options === undefined) return McpSessionRegistry.layer()
  if (options === null || typeof options !== "object") {
    return refused(
      new RegistryConfig.RegistryConfigError({ option: "options", value: showStore(options), detail: "must be an object" })
    )
  }
  const { hooks, store, ...common } = options
  const registryOptions: RegistryConfig.Options = {
    ...common,
    ...(hooks === undefined ? {} : { hooks: Array.isArray(hooks) ? hooks.map(toRevocationHook) : hooks as never })
  }
  if (store === undefined || store === "memory") return McpSessionRegistry.layer(registryOptions)
  if (store !== null && typeof store === "object" && "redis" in store) return redisLayerOf(store, registryOptions)
  return refused(
    new RegistryConfig.RegistryConfigError({
      option: "store",
      value: showStore(store),
      detail: `must be "memory" or { redis: { url } | { client } }`
    })
  )
}
