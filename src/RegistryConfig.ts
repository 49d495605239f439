/**
 * The registry's options: their defaults, their validation, and how to read
 * them from the environment with Effect `Config`.
 *
 * Every option is optional. Times accept any `Duration.Input` (`"30 minutes"`,
 * `Duration.hours(8)`, a number of milliseconds). Values that make no sense
 * (zero, negative, NaN, an idle timeout longer than the lifetime) fail the
 * registry layer with a `RegistryConfigError` naming the option and the value,
 * instead of producing a registry that silently misbehaves.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type { RevocationHook } from "./Revocation.ts"

/**
 * What a host may set when it builds the registry.
 *
 * @since 0.1.0
 */
export interface Options {
  /** A credential unused for this long dies (`idle`). Default 30 minutes. */
  readonly idleTimeout?: Duration.Input | undefined
  /** Lifetime from the last use; every use slides it forward. Default 30 days. */
  readonly maxLifetime?: Duration.Input | undefined
  /** A hard cap from issue that no use extends. Default none. */
  readonly absoluteLifetime?: Duration.Input | undefined
  /** How often the background sweeper reclaims dead credentials. Default 1 minute. */
  readonly sweepInterval?: Duration.Input | undefined
  /** Live credentials across the registry; `issue` fails with `RegistryFull` beyond. Default 100,000. */
  readonly maxCredentials?: number | undefined
  /** Live credentials per thread; `issue` fails with `RegistryFull` beyond. Default 100. */
  readonly maxCredentialsPerThread?: number | undefined
  /** How long one hook may run for one event before it is abandoned. Default 5 seconds. */
  readonly hookTimeout?: Duration.Input | undefined
  /** How long a revoked, idle or expired token keeps its reason before it reads `unknown`. Default 1 hour. */
  readonly tombstoneRetention?: Duration.Input | undefined
  /** How many such reasons are remembered at most; the oldest go first. Default 100,000. */
  readonly maxTombstones?: number | undefined
  /**
   * What the idle timeout counts. `"awake"` (the default): only time the
   * machine was awake, read from the monotonic time of the registry's
   * `Clock`, so a laptop that slept over lunch wakes with its sessions alive.
   * `"wall"`: wall-clock time, sleep included. Lifetimes and every epoch
   * millisecond field count wall time either way. See docs/liveness.md for
   * what each platform's monotonic clock does during sleep.
   */
  readonly idleClock?: IdleClock | undefined
  /**
   * Whether a successful `resolve`, and a call in flight, keep the credential
   * alive. Default `true`. With `false` only `touch` restarts the idle clock
   * and slides the expiry: a leaked token cannot keep itself alive by being used.
   */
  readonly slideOnUse?: boolean | undefined
  /**
   * Hooks that live as long as the registry itself, so they see every event up
   * to and including the `shutdown` of the last credential. Hooks registered
   * with `onRevoke` from a layer built on top of the registry are gone by then.
   */
  readonly hooks?: ReadonlyArray<RevocationHook> | undefined
}

/**
 * What the idle timeout counts: time the machine was awake, or wall time.
 *
 * @since 0.1.0
 */
export type IdleClock = "awake" | "wall"

/**
 * Options after validation, in milliseconds.
 *
 * @since 0.1.0
 */
export interface Resolved {
  readonly idleTimeoutMillis: number
  readonly maxLifetimeMillis: number
  /** `Infinity` when there is no absolute cap. */
  readonly absoluteLifetimeMillis: number
  readonly sweepIntervalMillis: number
  readonly maxCredentials: number
  readonly maxCredentialsPerThread: number
  readonly hookTimeoutMillis: number
  readonly tombstoneRetentionMillis: number
  readonly maxTombstones: number
  readonly idleClock: IdleClock
  readonly slideOnUse: boolean
  readonly hooks: ReadonlyArray<RevocationHook>
}

/**
 * The defaults, as documented in the README.
 *
 * @since 0.1.0
 */
export const defaults = {
  idleTimeout: Duration.minutes(30),
  maxLifetime: Duration.days(30),
  absoluteLifetime: Duration.infinity,
  sweepInterval: Duration.minutes(1),
  maxCredentials: 100_000,
  maxCredentialsPerThread: 100,
  hookTimeout: Duration.seconds(5),
  tombstoneRetention: Duration.hours(1),
  maxTombstones: 100_000,
  idleClock: "awake",
  slideOnUse: true
} as const

/**
 * An option was given a value that makes no sense. Names the option and shows
 * the value it got.
 *
 * @since 0.1.0
 */
export class RegistryConfigError extends Schema.TaggedError<RegistryConfigError>()("RegistryConfigError", {
  option: Schema.String,
  value: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `Invalid registry option ${this.option} = ${this.value}: ${this.detail}`
  }
}

const maxTombstoneRetentionMillis = 3650 * 24 * 3_600_000

const show = (value: unknown): string => {
  if (Duration.isDuration(value)) return Duration.format(value)
  if (typeof value === "string") return JSON.stringify(value)
  try {
    return typeof value === "object" && value !== null ? JSON.stringify(value) : String(value)
  } catch {
    return String(value)
  }
}

const millisOf = (
  option: string,
  input: Duration.Input | undefined,
  fallback: Duration.Duration,
  allowInfinite = false
): Effect.Effect<number, RegistryConfigError> => {
  if (input === undefined) return Effect.succeed(Duration.toMillis(fallback))
  const fail = (detail: string) => Effect.fail(new RegistryConfigError({ option, value: show(input), detail }))
  if (typeof input === "number" && Number.isNaN(input)) return fail("must be a duration, not NaN")
  const duration = Duration.fromInput(input)
  if (Option.isNone(duration)) return fail("is not a duration")
  const millis = Duration.toMillis(duration.value)
  if (Number.isNaN(millis)) return fail("must be a duration, not NaN")
  if (millis <= 0) return fail("must be greater than zero")
  if (!allowInfinite && !Number.isFinite(millis)) return fail("must be finite")
  return Effect.succeed(millis)
}

const countOf = (option: string, input: number | undefined, fallback: number): Effect.Effect<number, RegistryConfigError> => {
  if (input === undefined) return Effect.succeed(fallback)
  if (typeof input === "number" && (input === Infinity || (Number.isInteger(input) && input > 0))) {
    return Effect.succeed(input)
  }
  return Effect.fail(
    new RegistryConfigError({ option, value: show(input), detail: "must be a positive whole number (or Infinity)" })
  )
}

/**
 * Validates options and fills in the defaults.
 *
 * @since 0.1.0
 */
export const resolve = Effect.fnUntraced(function*(options: Options = {}): Effect.fn.Return<Resolved, RegistryConfigError> {
  const idleTimeoutMillis = yield* millisOf("idleTimeout", options.idleTimeout, defaults.idleTimeout)
  const maxLifetimeMillis = yield* millisOf("maxLifetime", options.maxLifetime, defaults.maxLifetime)
  const absoluteLifetimeMillis = yield* millisOf(
    "absoluteLifetime",
    options.absoluteLifetime,
    defaults.absoluteLifetime,
    true
  )
  const sweepIntervalMillis = yield* millisOf("sweepInterval", options.sweepInterval, defaults.sweepInterval)
  const hookTimeoutMillis = yield* millisOf("hookTimeout", options.hookTimeout, defaults.hookTimeout)
  const tombstoneRetentionMillis = yield* millisOf(
    "tombstoneRetention",
    options.tombstoneRetention,
    defaults.tombstoneRetention
  )
  // A tombstone packs its deadline and reason into one number, which stops
  // being exact some 35,000 years out; ten years is far past any real use.
  if (tombstoneRetentionMillis > maxTombstoneRetentionMillis) {
    return yield* new RegistryConfigError({
      option: "tombstoneRetention",
      value: show(options.tombstoneRetention),
      detail: "must be at most 3650 days"
    })
  }
  const maxCredentials = yield* countOf("maxCredentials", options.maxCredentials, defaults.maxCredentials)
  const maxCredentialsPerThread = yield* countOf(
    "maxCredentialsPerThread",
    options.maxCredentialsPerThread,
    defaults.maxCredentialsPerThread
  )
  const maxTombstones = yield* countOf("maxTombstones", options.maxTombstones, defaults.maxTombstones)
  if (idleTimeoutMillis > maxLifetimeMillis) {
    return yield* new RegistryConfigError({
      option: "idleTimeout",
      value: show(options.idleTimeout),
      detail: `must not exceed maxLifetime (${Duration.format(Duration.millis(maxLifetimeMillis))})`
    })
  }
  const idleClock = options.idleClock ?? defaults.idleClock
  if (idleClock !== "awake" && idleClock !== "wall") {
    return yield* new RegistryConfigError({
      option: "idleClock",
      value: show(options.idleClock),
      detail: `must be "awake" or "wall"`
    })
  }
  const slideOnUse = options.slideOnUse ?? defaults.slideOnUse
  if (typeof slideOnUse !== "boolean") {
    return yield* new RegistryConfigError({
      option: "slideOnUse",
      value: show(options.slideOnUse),
      detail: "must be true or false"
    })
  }
  const hooks = options.hooks ?? []
  if (!Array.isArray(hooks) || hooks.some((hook) => typeof hook !== "function")) {
    return yield* new RegistryConfigError({ option: "hooks", value: "[...]", detail: "must be an array of functions" })
  }
  return {
    idleTimeoutMillis,
    maxLifetimeMillis,
    absoluteLifetimeMillis,
    sweepIntervalMillis,
    maxCredentials,
    maxCredentialsPerThread,
    hookTimeoutMillis,
    tombstoneRetentionMillis,
    maxTombstones,
    idleClock,
    slideOnUse,
    hooks
  }
})

/**
 * The environment variables read by `config`, by option.
 *
 * @since 0.1.0
 */
export const environment = {
  idleTimeout: "MCP_SESSION_REGISTRY_IDLE_TIMEOUT",
  maxLifetime: "MCP_SESSION_REGISTRY_MAX_LIFETIME",
  absoluteLifetime: "MCP_SESSION_REGISTRY_ABSOLUTE_LIFETIME",
  sweepInterval: "MCP_SESSION_REGISTRY_SWEEP_INTERVAL",
  maxCredentials: "MCP_SESSION_REGISTRY_MAX_CREDENTIALS",
  maxCredentialsPerThread: "MCP_SESSION_REGISTRY_MAX_CREDENTIALS_PER_THREAD",
  hookTimeout: "MCP_SESSION_REGISTRY_HOOK_TIMEOUT",
  tombstoneRetention: "MCP_SESSION_REGISTRY_TOMBSTONE_RETENTION",
  maxTombstones: "MCP_SESSION_REGISTRY_MAX_TOMBSTONES",
  idleClock: "MCP_SESSION_REGISTRY_IDLE_CLOCK",
  slideOnUse: "MCP_SESSION_REGISTRY_SLIDE_ON_USE"
} as const

const optionalString = (name: string) => Config.option(Config.String(name)).pipe(Config.map(Option.getOrUndefined))

// Counts are read as text so that `abc` reaches validation and is reported
// with its option name, like every other bad value.
const count = (name: string) =>
  optionalString(name).pipe(Config.map((text) => (text === undefined ? undefined : text.trim() === "" ? NaN : Number(text))))

// Only the two spellings are booleans; anything else reaches validation as
// the text it was, so the error shows what the variable held.
const flag = (name: string) =>
  optionalString(name).pipe(
    Config.map((text): boolean | string | undefined => {
      if (text === undefined) return undefined
      const trimmed = text.trim().toLowerCase()
      return trimmed === "true" ? true : trimmed === "false" ? false : text
    })
  )

/**
 * Every option but `hooks`, read from the environment variables in
 * `environment`. Durations are written like `30 minutes` or `8 hours`;
 * `slideOnUse` is `true` or `false`; `idleClock` is `awake` or `wall`.
 * Unset variables keep the defaults.
 *
 * @since 0.1.0
 */
export const config: Config.Config<Options> = Config.all({
  idleTimeout: optionalString(environment.idleTimeout),
  maxLifetime: optionalString(environment.maxLifetime),
  absoluteLifetime: optionalString(environment.absoluteLifetime),
  sweepInterval: optionalString(environment.sweepInterval),
  hookTimeout: optionalString(environment.hookTimeout),
  tombstoneRetention: optionalString(environment.tombstoneRetention),
  maxCredentials: count(environment.maxCredentials),
  maxCredentialsPerThread: count(environment.maxCredentialsPerThread),
  maxTombstones: count(environment.maxTombstones),
  idleClock: optionalString(environment.idleClock),
  slideOnUse: flag(environment.slideOnUse)
}).pipe(
  Config.map((read) => {
    const options: Record<string, unknown> = {}
    for (const [key, value] of Object.entries(read)) {
      if (value !== undefined) options[key] = value
    }
    // Duration text is checked by `resolve`, which names the option on failure.
    return options as Options
  })
)
