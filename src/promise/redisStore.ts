/**
 * The Redis store for `createRegistry`: `McpSessionRegistry.layerRedis` on a
 * connection the registry opens from a URL, or on a node-redis client the
 * host already has.
 *
 * `@effect/platform-node`'s `NodeRedis` (and with it node-redis, an optional
 * peer dependency) is imported only when a URL is given, so a host on the
 * memory store never needs them installed.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redis from "effect/persistence/Redis"
import * as McpSessionRegistry from "../McpSessionRegistry.ts"
import * as RegistryConfig from "../RegistryConfig.ts"

/**
 * What the registry uses of a node-redis client (`createClient()` from
 * `redis` 5 or 6): commands on it, and connections it duplicates for pub/sub
 * and reserved commands. The host keeps ownership: `close()` leaves it open.
 *
 * @since 0.1.0
 */
export interface RedisClient {
  readonly isOpen: boolean
  sendCommand(args: Array<string>, options?: { readonly abortSignal?: AbortSignal }): Promise<unknown>
  duplicate(): RedisClient
  connect(): Promise<unknown>
  subscribe(channel: string, listener: (message: string, channel: string) => void): Promise<unknown>
  destroy(): void
  on(event: "error", listener: (error: Error) => void): unknown
}

/**
 * The Redis store: where Redis is, plus every option `layerRedis` adds to the
 * common ones (`keyPrefix`, `revokeOnShutdown`, `storeTimeout`, `localCache`).
 *
 * @since 0.1.0
 */
export interface RedisStore extends Omit<McpSessionRegistry.RedisOptions, keyof RegistryConfig.Options> {
  readonly redis:
    | {
      /** `redis://[user:password@]host:port[/db]` or `rediss://...`; the registry opens and closes its own connections. */
      readonly url: string
    }
    | {
      /** A connected client of the host's; the registry sends on it and duplicates it, and never closes it. */
      readonly client: RedisClient
    }
}

const configError = (option: string, value: string, detail: string) =>
  new RegistryConfig.RegistryConfigError({ option, value, detail })

/** A registry layer that fails with `error` when built. */
const refused = (error: RegistryConfig.RegistryConfigError) =>
  Layer.effect(McpSessionRegistry.McpSessionRegistry, Effect.fail(error))

// The same three operations `NodeRedis` builds on its own client, on the
// host's: commands on the client, duplicates for pub/sub and for `reserve`.
const fromClient = (client: RedisClient): Layer.Layer<Redis.Redis, Redis.RedisError> =>
  Layer.effect(
    Redis.Redis,
    Effect.gen(function*() {
      const sendWith = (target: RedisClient) => <A = unknown>(command: string, ...args: ReadonlyArray<string>) =>
        Effect.tryPromise({
          // The signal takes a timed-out call out of the client's offline
          // queue, so it cannot hold the host's client (or its close) later.
          try: (signal) => target.sendCommand([command, ...args], { abortSignal: signal }) as Promise<A>,
          catch: (cause) => new Redis.RedisError({ cause })
        })
      const duplicate = Effect.tryPromise({
        try: async () => {
          const connection = client.duplicate()
          // node-redis rethrows an `error` event nobody listens to, which would
          // end the host's process on a dropped socket.
          connection.on("error", () => {})
          try {
            await connection.connect()
            return connection
          } catch (cause) {
            if (connection.isOpen) connection.destroy()
            throw cause
          }
        },
        catch: (cause) => new Redis.RedisError({ cause })
      })
      return yield* Redis.make({
        send: sendWith(client),
        connect: Effect.map(duplicate, (connection) => ({
          send: sendWith(connection),
          close: Effect.sync(() => {
            if (connection.isOpen) connection.destroy()
          })
        })),
        subscribe: (channel, onMessage) =>
          Effect.acquireRelease(
            Effect.flatMap(duplicate, (subscriber) =>
              Effect.tryPromise({
                try: () => subscriber.subscribe(channel, (message, from) => onMessage({ channel: from, message })),
                catch: (cause) => {
                  if (subscriber.isOpen) subscriber.destroy()
                  return new Redis.RedisError({ cause })
                }
              }).pipe(Effect.as(subscriber))),
            (subscriber) =>
              Effect.sync(() => {
                if (subscriber.isOpen) subscriber.destroy()
              })
          ).pipe(Effect.as(Effect.never))
      })
    })
  )

/**
 * The layer for a Redis store, or the `RegistryConfigError` that says why
 * `store` cannot be one.
 *
 * @internal
 */
export const layerOf = async (
  store: RedisStore,
  common: RegistryConfig.Options
): Promise<
  Layer.Layer<McpSessionRegistry.McpSessionRegistry, RegistryConfig.RegistryConfigError | Redis.RedisError>
> => {
  const { redis, ...redisOnly } = store
  const options: McpSessionRegistry.RedisOptions = { ...common, ...redisOnly }
  if (redis !== null && typeof redis === "object" && "url" in redis) {
    if (typeof redis.url !== "string" || !/^rediss?:\/\//.test(redis.url)) {
      return refused(configError("store.redis.url", "<hidden>", "must be a redis:// or rediss:// URL"))
    }
    const { layer: nodeRedis } = await import("@effect/platform-node/NodeRedis")
    return McpSessionRegistry.layerRedis(options).pipe(Layer.provide(nodeRedis({ url: redis.url })))
  }
  if (redis !== null && typeof redis === "object" && "client" in redis) {
    const client = redis.client
    if (client === null || typeof client !== "object" || typeof client.sendCommand !== "function") {
      // Its type only: a string here is most likely a Redis URL, password and all.
      const shown = client === null ? "null" : `<${typeof client}>`
      return refused(configError("store.redis.client", shown, "must be a node-redis client"))
    }
    return McpSessionRegistry.layerRedis(options).pipe(Layer.provide(fromClient(client)))
  }
  return refused(configError("store.redis", "<given>", "must be { url } or { client }"))
}
