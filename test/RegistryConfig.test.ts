import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Exit, Layer } from "effect"
import { McpSessionRegistry, RegistryConfig } from "../src/index.ts"

const configError = (options: RegistryConfig.Options) =>
  Effect.gen(function*() {
    const exit = yield* Effect.exit(Layer.build(McpSessionRegistry.layer(options)).pipe(Effect.scoped))
    assert.isTrue(Exit.isFailure(exit))
    const error = yield* Effect.flip(RegistryConfig.resolve(options))
    assert.strictEqual(error._tag, "RegistryConfigError")
    return error
  })

describe("RegistryConfig", () => {
  it.effect("fills in the documented defaults", () =>
    Effect.gen(function*() {
      const resolved = yield* RegistryConfig.resolve()
      assert.strictEqual(resolved.idleTimeoutMillis, 30 * 60_000)
      assert.strictEqual(resolved.maxLifetimeMillis, 30 * 24 * 3_600_000)
      assert.strictEqual(resolved.absoluteLifetimeMillis, Infinity)
      assert.strictEqual(resolved.sweepIntervalMillis, 60_000)
      assert.strictEqual(resolved.maxCredentials, 100_000)
      assert.strictEqual(resolved.maxCredentialsPerThread, 100)
      assert.strictEqual(resolved.hookTimeoutMillis, 5_000)
      assert.strictEqual(resolved.tombstoneRetentionMillis, 3_600_000)
      assert.strictEqual(resolved.maxTombstones, 100_000)
    }))

  it.effect("accepts every Duration input form", () =>
    Effect.gen(function*() {
      const resolved = yield* RegistryConfig.resolve({
        idleTimeout: "45 minutes",
        maxLifetime: Duration.days(7),
        absoluteLifetime: 90 * 24 * 3_600_000,
        maxCredentials: Infinity
      })
      assert.strictEqual(resolved.idleTimeoutMillis, 45 * 60_000)
      assert.strictEqual(resolved.maxLifetimeMillis, 7 * 24 * 3_600_000)
      assert.strictEqual(resolved.absoluteLifetimeMillis, 90 * 24 * 3_600_000)
      assert.strictEqual(resolved.maxCredentials, Infinity)
    }))

  it.effect.each([
    [{ idleTimeout: 0 }, "idleTimeout", "0", "greater than zero"],
    [{ idleTimeout: -5 }, "idleTimeout", "-5", "greater than zero"],
    [{ idleTimeout: NaN }, "idleTimeout", "NaN", "NaN"],
    [{ maxLifetime: "Infinity" }, "maxLifetime", "\"Infinity\"", "finite"],
    [{ maxLifetime: "soon" as Duration.Input }, "maxLifetime", "\"soon\"", "not a duration"],
    [{ absoluteLifetime: Duration.zero }, "absoluteLifetime", "0", "greater than zero"],
    [{ sweepInterval: "-1 second" as Duration.Input }, "sweepInterval", "\"-1 second\"", "greater than zero"],
    [{ hookTimeout: 0 }, "hookTimeout", "0", "greater than zero"],
    [{ tombstoneRetention: NaN }, "tombstoneRetention", "NaN", "NaN"],
    [{ tombstoneRetention: "3651 days" as Duration.Input }, "tombstoneRetention", "\"3651 days\"", "at most 3650 days"],
    [{ maxCredentials: 0 }, "maxCredentials", "0", "positive whole number"],
    [{ maxCredentials: 1.5 }, "maxCredentials", "1.5", "positive whole number"],
    [{ maxCredentialsPerThread: -1 }, "maxCredentialsPerThread", "-1", "positive whole number"],
    [{ maxTombstones: NaN }, "maxTombstones", "NaN", "positive whole number"],
    [{ idleTimeout: "2 hours", maxLifetime: "1 hour" }, "idleTimeout", "\"2 hours\"", "must not exceed maxLifetime"]
  ] as const)("rejects %j naming the option and value", ([options, option, value, detail]) =>
    Effect.gen(function*() {
      const error = yield* configError(options as RegistryConfig.Options)
      assert.strictEqual(error.option, option)
      assert.strictEqual(error.value, value)
      assert.include(error.message, option)
      assert.include(error.message, detail)
    }))

  it.effect("rejects hooks that are not functions", () =>
    Effect.gen(function*() {
      const error = yield* configError({ hooks: ["nope"] as never })
      assert.strictEqual(error.option, "hooks")
    }))

  it.effect("layerConfig reads the environment", () =>
    Effect.gen(function*() {
      const registry = yield* McpSessionRegistry.McpSessionRegistry
      const issued = yield* registry.issue({ threadId: "t", providerInstanceId: "p" })
      assert.strictEqual(issued.expiresAt - issued.issuedAt, 2 * 3_600_000)
      const full = yield* Effect.flip(registry.issue({ threadId: "t", providerInstanceId: "q" }))
      assert.strictEqual(full._tag, "RegistryFull")
    }).pipe(
      Effect.provide(McpSessionRegistry.layerConfig.pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({
        env: {
          MCP_SESSION_REGISTRY_IDLE_TIMEOUT: "10 minutes",
          MCP_SESSION_REGISTRY_MAX_LIFETIME: "2 hours",
          MCP_SESSION_REGISTRY_MAX_CREDENTIALS_PER_THREAD: "1"
        }
      })))))
    ))

  it.effect.each([
    ["MCP_SESSION_REGISTRY_IDLE_TIMEOUT", "forever", "idleTimeout"],
    ["MCP_SESSION_REGISTRY_MAX_CREDENTIALS", "lots", "maxCredentials"],
    ["MCP_SESSION_REGISTRY_MAX_CREDENTIALS", "2.5", "maxCredentials"],
    ["MCP_SESSION_REGISTRY_HOOK_TIMEOUT", "0 seconds", "hookTimeout"]
  ] as const)("layerConfig names the option of a bad %s", ([name, value, option]) =>
    Effect.gen(function*() {
      const error = yield* Layer.build(McpSessionRegistry.layerConfig).pipe(
        Effect.scoped,
        Effect.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env: { [name]: value } }))),
        Effect.flip
      )
      assert.strictEqual(error._tag, "RegistryConfigError")
      assert.strictEqual(error.option, option)
    }))
})
