/**
 * The registry on Redis: the same `McpSessionRegistry` service, its state in
 * Redis so several replicas share it.
 *
 * Each operation is one atomic Lua script (see `scripts.ts`) given `now` from
 * the registry's `Clock`; `resolve` is one round trip, and a malformed token
 * none. Hooks given in the options run once per credential, on the replica
 * whose script removed it; `onRevoke` hooks run on every replica, the others
 * hearing of a removal through Redis pub/sub (at most once: a message sent
 * while a replica's subscriber is disconnected is lost to that replica).
 * Every call is bounded by `storeTimeout` on real time and fails with
 * `StoreUnavailable` when Redis cannot answer.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberSet from "effect/FiberSet"
import * as Option from "effect/Option"
import type * as Redis from "effect/persistence/Redis"
import { Redis as RedisService, RedisError } from "effect/persistence/Redis"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import { hash } from "node:crypto"
import * as BearerToken from "../BearerToken.ts"
import type { CredentialInfo, CredentialScope, IssuedCredential } from "../Credential.ts"
import { InvalidCredential, InvalidReason } from "../Credential.ts"
import { randomBase64Url } from "../internal/entropy.ts"
import * as Hooks from "../internal/hooks.ts"
import * as IssueRequests from "../internal/issueRequest.ts"
import * as Metrics from "../internal/metrics.ts"
import * as RefusalLog from "../internal/refusalLog.ts"
import type { IssueRequest } from "../McpSessionRegistry.ts"
import { InvalidIssueRequest, McpSessionRegistry, RegistryFull, StoreUnavailable } from "../McpSessionRegistry.ts"
import * as RegistryConfig from "../RegistryConfig.ts"
import type { RevocationEvent, RevocationReason } from "../Revocation.ts"
import { RevocationReason as RevocationReasonSchema } from "../Revocation.ts"
import type { Common, RemovedFields } from "./scripts.ts"
import * as Scripts from "./scripts.ts"

/**
 * Options of `McpSessionRegistry.layerRedis`: every option of `layer`, plus
 * where and how the state lives in Redis.
 *
 * @since 0.1.0
 */
export interface RedisOptions extends RegistryConfig.Options {
  /**
   * The prefix of every key; two prefixes on one Redis are two independent
   * registries. Every key is under the hash tag `{keyPrefix}`. Default `"mcpsr"`.
   */
  readonly keyPrefix?: string | undefined
  /**
   * Whether closing this replica's layer revokes every credential under the
   * prefix (reason `shutdown`), as the memory store always does. Default
   * `false`: the other replicas keep serving, and a restarted replica finds
   * every credential still live.
   */
  readonly revokeOnShutdown?: boolean | undefined
  /**
   * How long one store call may take, on real time (not the registry's
   * `Clock`), before it fails with `StoreUnavailable` (`timeout`). Default 2 seconds.
   */
  readonly storeTimeout?: Duration.Input | undefined
  /**
   * An opt-in local cache of live credentials: a token resolved within
   * `maxStaleness` (of the registry's `Clock`) is answered without Redis.
   * A revoke on this replica drops the entry at once, one on another when its
   * pub/sub message arrives (a lookup whose answer was on its way then is not
   * cached); a lost message leaves a revoked token usable on this replica
   * for at most `maxStaleness`. A cached answer is a use only locally:
   * Redis hears of it at the next lookup past `maxStaleness`, so keep it far
   * below `idleTimeout`. Default: no cache.
   */
  readonly localCache?: {
    readonly maxStaleness: Duration.Input
    /** The most entries kept; the oldest go first. Default 10,000. */
    readonly maxEntries?: number | undefined
  } | undefined
}

/**
 * The Redis-only options after validation.
 *
 * @since 0.1.0
 */
export interface ResolvedRedis {
  readonly keyPrefix: string
  readonly revokeOnShutdown: boolean
  readonly storeTimeoutMillis: number
  readonly cacheStalenessMillis: number | undefined
  readonly cacheMaxEntries: number
}

/** The default `keyPrefix`. */
export const defaultKeyPrefix = "mcpsr"

const defaultStoreTimeout = Duration.seconds(2)

/** Validates the Redis-only options. */
export const resolveRedis = (options: RedisOptions = {}): Effect.Effect<ResolvedRedis, RegistryConfig.RegistryConfigError> =>
  Effect.suspend(() => {
    const fail = (option: string, value: unknown, detail: string) =>
      Effect.fail(new RegistryConfig.RegistryConfigError({ option, value: String(value), detail }))
    const keyPrefix = options.keyPrefix ?? defaultKeyPrefix
    if (typeof keyPrefix !== "string" || keyPrefix.length === 0 || keyPrefix.length > 128) {
      return fail("keyPrefix", keyPrefix, "must be a string of 1 to 128 characters")
    }
    if (/[{}\s]/.test(keyPrefix)) return fail("keyPrefix", keyPrefix, "must not hold braces or white space")
    const revokeOnShutdown = options.revokeOnShutdown ?? false
    if (typeof revokeOnShutdown !== "boolean") return fail("revokeOnShutdown", revokeOnShutdown, "must be true or false")
    const millis = (input: Duration.Input | undefined, fallback: Duration.Duration) => {
      const duration = input === undefined ? Option.some(fallback) : Duration.fromInput(input)
      if (Option.isNone(duration)) return undefined
      const ms = Duration.toMillis(duration.value)
      return Number.isFinite(ms) && ms > 0 ? ms : undefined
    }
    const storeTimeoutMillis = millis(options.storeTimeout, defaultStoreTimeout)
    if (storeTimeoutMillis === undefined) {
      return fail("storeTimeout", options.storeTimeout, "must be a finite duration greater than zero")
    }
    let cacheStalenessMillis: number | undefined
    let cacheMaxEntries = 10_000
    if (options.localCache !== undefined) {
      cacheStalenessMillis = millis(options.localCache.maxStaleness, Duration.zero)
      if (cacheStalenessMillis === undefined) {
        return fail(
          "localCache.maxStaleness",
          options.localCache.maxStaleness,
          "must be a finite duration greater than zero"
        )
      }
      const max = options.localCache.maxEntries ?? cacheMaxEntries
      if (!Number.isInteger(max) || max <= 0) {
        return fail("localCache.maxEntries", max, "must be a positive whole number")
      }
      cacheMaxEntries = max
    }
    return Effect.succeed({ keyPrefix, revokeOnShutdown, storeTimeoutMillis, cacheStalenessMillis, cacheMaxEntries })
  })

const credentialIdPrefix = "cred_"
const providerSessionIdPrefix = "psess_"
const tokenLabel = { label: "McpSessionToken" } as const
const headerLabel = { label: "McpSessionAuthorization" } as const
const emptyCapabilities: ReadonlyArray<string> = Object.freeze([])
const noop = (): void => {}
// Removals per script: bounds how long one script holds Redis.
const batchSize = 1000

// One error value per reason: refusing a sprayed token must not allocate.
const invalid: Record<InvalidReason, InvalidCredential> = Object.fromEntries(
  InvalidReason.literals.map((reason) => [reason, new InvalidCredential({ reason })])
) as Record<InvalidReason, InvalidCredential>

const reasons = new Set<string>(RevocationReasonSchema.literals)

/**
 * The random part of a credential's ids, from its token's digest: the first
 * 72 bits of the digest's own SHA-256, so it tells nothing of the digest, and
 * a lookup by token finds the credential under its id, with no second index.
 */
const idOf = (digest: Buffer): string => hash("sha256", digest, "base64url").slice(0, 12)

/**
 * What proves a token is the one its id was derived from: 128 bits of the
 * digest, none of them among the 36 its checksum shows.
 */
const verifierOf = (digest: Buffer): string => digest.toString("base64url", 16, 32)

/** Ids never hold `__` nor begin or end their random part with `_`; a token whose id would is minted again. */
const usableId = (suffix: string): boolean =>
  suffix.charCodeAt(0) !== 95 && suffix.charCodeAt(suffix.length - 1) !== 95 && !suffix.includes("__")

/** The random part of a credential id, or undefined for a string that is none. */
const suffixOf = (credentialId: unknown): string | undefined =>
  typeof credentialId === "string" && credentialId.length === credentialIdPrefix.length + 12 &&
    credentialId.startsWith(credentialIdPrefix)
    ? credentialId.slice(credentialIdPrefix.length)
    : undefined

// Store calls in flight in this process, for tests that must wait for the
// store's I/O to finish before they move a TestClock on.
let pending = 0

/**
 * How many Redis store calls are in flight in this process.
 *
 * @internal
 */
export const pendingCalls = (): number => pending

/**
 * `@effect/platform-node`'s `NodeRedis` service, looked up by its key so this
 * module does not import the platform package. When it is present, commands
 * go to its client with an `AbortSignal`: a call that timed out is then taken
 * out of node-redis's offline queue instead of waiting there for a Redis that
 * is gone, which would hold the client's `close()` (and so the layer's
 * shutdown) until Redis came back.
 */
class NodeRedisClient extends Context.Service<NodeRedisClient, {
  readonly client: {
    readonly sendCommand: (
      args: Array<string>,
      options?: { readonly abortSignal?: AbortSignal; readonly timeout?: number }
    ) => Promise<unknown>
    readonly destroy: () => void
  }
}>()("@effect/platform-node/NodeRedis") {}

/** Why a Redis call failed, as `StoreUnavailable` says it. */
const reasonOf = (error: Redis.RedisError): "unreachable" | "error" => {
  const cause = error.cause as { readonly name?: unknown; readonly constructor?: { readonly name?: unknown } } | undefined
  const name = String(cause?.constructor?.name ?? cause?.name ?? "")
  // A reply error is Redis refusing the command; anything else (closed,
  // offline, refused, reset socket) means no answer could come.
  return name.includes("ErrorReply") || name.includes("SimpleError") || name.includes("BlobError") ? "error" : "unreachable"
}

/**
 * Builds the Redis registry in the current scope.
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(options?: RedisOptions) {
  const config = yield* RegistryConfig.resolve(options)
  const redisConfig = yield* resolveRedis(options)
  const clock = yield* Clock.Clock
  const redis = yield* RedisService
  const nodeRedis = Option.getOrUndefined(yield* Effect.serviceOption(NodeRedisClient))
  const send: <A>(command: string, ...args: ReadonlyArray<string>) => Effect.Effect<A, Redis.RedisError> =
    nodeRedis === undefined
      ? redis.send
      : <A>(command: string, ...args: ReadonlyArray<string>) =>
        Effect.tryPromise({
          try: (signal) => nodeRedis.client.sendCommand([command, ...args], { abortSignal: signal }) as Promise<A>,
          catch: (cause) => new RedisError({ cause })
        })
  const base = `{${redisConfig.keyPrefix}}:`
  const replicaId = randomBase64Url(9)
  const slideOnUse = (config as { readonly slideOnUse?: boolean }).slideOnUse !== false
  // Whole milliseconds throughout: the scripts read whole numbers only, and
  // the figures handed back to the host are the ones Redis judges by.
  const limits = Scripts.limits(config)
  const settings = Scripts.settings(limits)
  const absoluteMillis = limits.absoluteMillis < 0 ? Infinity : limits.absoluteMillis
  // The registry's clock, floored to whole milliseconds (a TestClock or a
  // host's clock may have finer ones), read through here only.
  const nowMillis = (): number => Math.floor(clock.currentTimeMillisUnsafe())
  const common = (now: number): Common => [base, settings, now, replicaId]

  const timeouts = new Map<string, StoreUnavailable>()
  const failures = new Map<string, StoreUnavailable>()
  const unavailable = (operation: string, reason: "timeout" | "unreachable" | "error") => {
    const cache = reason === "timeout" ? timeouts : failures
    const key = reason === "timeout" ? operation : `${operation}:${reason}`
    let error = cache.get(key)
    if (error === undefined) {
      error = new StoreUnavailable({ reason, operation })
      cache.set(key, error)
    }
    return error
  }

  // Fails fast with a RedisError when Redis cannot be reached at all.
  yield* redis.send("PING")

  const timeoutMillis = redisConfig.storeTimeoutMillis
  const makeContext = yield* Effect.context<never>()
  // A call timed out with no answer since: a command sent to a frozen Redis
  // still waits for its reply, and the client's `close()` would wait with it.
  let stale = false

  // The operations are one function library, loaded once here and called by
  // name: one FCALL per call and nothing else. A server without functions
  // (before Redis 7) runs each as a script by its SHA instead. A Redis that
  // lost them (a restart, FUNCTION or SCRIPT FLUSH) says so: they are loaded
  // again and the call retried once.
  const loadLibrary = Effect.catchIf(
    Effect.as(send<string>("FUNCTION", "LOAD", Scripts.library), true),
    (error: Redis.RedisError) => String(error.cause).includes("already exists"),
    () => Effect.succeed(true)
  )
  const functions = yield* Effect.catchIf(
    loadLibrary,
    (error: Redis.RedisError) => reasonOf(error) === "error",
    () => Effect.succeed(false)
  )
  const lostText = (text: string) => text.includes("NOSCRIPT") || text.includes("Function not found")

  /**
   * One operation's call, ready to send: the command (built afresh on each
   * attempt, as a reload may change a script's SHA) and how to reload.
   */
  interface Prepared<A> {
    readonly _A?: (_: never) => A
    readonly command: () => Array<string>
    readonly reload: Effect.Effect<unknown, Redis.RedisError>
  }

  const load = <Params extends ReadonlyArray<any>, R>(op: Scripts.Operation<Params, R>) => {
    if (functions) {
      const name = Scripts.functionName(op)
      return Effect.succeed((...params: [Common, ...Params]): Prepared<R> => {
        const args = op.params(...params)
        return {
          command: () => {
            const command = ["FCALL", name, "0"]
            for (const arg of args) command.push(String(arg))
            return command
          },
          reload: loadLibrary
        }
      })
    }
    return Effect.map(send<string>("SCRIPT", "LOAD", op.script.lua), (loaded) => {
      let sha = loaded
      const reload = Effect.map(send<string>("SCRIPT", "LOAD", op.script.lua), (again) => void (sha = again))
      return (...params: [Common, ...Params]): Prepared<R> => {
        const args = op.params(...params)
        return {
          command: () => {
            const command = ["EVALSHA", sha, "0"]
            for (const arg of args) command.push(String(arg))
            return command
          },
          reload
        }
      }
    })
  }

  /** A call in flight on NodeRedis: its deadline, and how it fails at it. */
  interface Waiter {
    readonly deadline: number
    done: boolean
    readonly expire: () => void
  }
  // Calls start in order and share one timeout, so their deadlines come in the
  // order they were made: a queue with one timer for its oldest call. Calls
  // made within one eighth of the timeout share an abort signal, aborted when
  // the first of them times out: that takes what is still unwritten (the
  // client is offline) out of node-redis's queue, so its close() does not
  // wait for them, and those calls fail then, up to an eighth early.
  const deadlines = (() => {
    let waiters: Array<Waiter> = []
    let head = 0
    let timer: ReturnType<typeof setTimeout> | undefined
    const bucketMillis = Math.max(1, timeoutMillis / 8)
    let bucket: { readonly controller: AbortController; readonly closes: number } | undefined
    const drop = () => {
      while (head < waiters.length && waiters[head]!.done) head++
      if (head === waiters.length) {
        waiters = []
        head = 0
      } else if (head > 1024 && head * 2 > waiters.length) {
        waiters = waiters.slice(head)
        head = 0
      }
    }
    const arm = () => {
      drop()
      timer = head < waiters.length
        ? setTimeout(fire, Math.max(1, Math.ceil(waiters[head]!.deadline - performance.now())))
        : undefined
    }
    const fire = () => {
      const now = performance.now()
      while (head < waiters.length && (waiters[head]!.done || waiters[head]!.deadline <= now)) {
        const waiter = waiters[head++]!
        if (!waiter.done) waiter.expire()
      }
      arm()
    }
    return {
      controller: (waiter: Waiter): AbortController => {
        const started = waiter.deadline - timeoutMillis
        if (bucket === undefined || started >= bucket.closes || bucket.controller.signal.aborted) {
          bucket = { controller: new AbortController(), closes: started + bucketMillis }
        }
        return bucket.controller
      },
      track: (waiter: Waiter) => {
        waiters.push(waiter)
        if (timer === undefined) arm()
      },
      settled: () => {
        if (head < waiters.length && waiters[head]!.done) drop()
        if (head === waiters.length && timer !== undefined) {
          clearTimeout(timer)
          timer = undefined
        }
      }
    }
  })()

  const failed = (operation: string, error: Redis.RedisError): Effect.Effect<never, StoreUnavailable> =>
    Effect.fail(unavailable(operation, reasonOf(error)))

  /**
   * Runs one store call, bounded by `storeTimeout` of real time. `late` gets
   * a reply that came after the call timed out or was interrupted: the script
   * ran, and the removals it made are this replica's to announce.
   */
  const call: <A>(
    operation: string,
    prepared: Prepared<A>,
    late?: (reply: A) => void
  ) => Effect.Effect<A, StoreUnavailable> = nodeRedis !== undefined
    ? // On NodeRedis, straight to its client: no fiber or abort signal of ours
      // per call, and one timer for all calls in flight (see `deadlines`);
      // they measured as much as the rest of a lookup's client-side work at
      // 64 in flight (node-redis's own per-command timeout, which we turn off,
      // makes a timer that fires for every command). A shared abort signal
      // takes a command that timed out before it was written out of its queue.
      <A>(operation: string, prepared: Prepared<A>, late?: (reply: A) => void) =>
      Effect.callback<A, StoreUnavailable>((resume) => {
        pending++
        const started = performance.now()
        const waiter: Waiter = {
          deadline: started + timeoutMillis,
          done: false,
          expire: () => {
            stale = true
            settle(Effect.fail(unavailable(operation, "timeout")))
            controller.abort()
          }
        }
        const controller = deadlines.controller(waiter)
        const settle = (effect: Effect.Effect<A, StoreUnavailable>) => {
          if (waiter.done) return
          waiter.done = true
          pending--
          deadlines.settled()
          resume(effect)
        }
        const attempt = (retried: boolean) => {
          nodeRedis.client.sendCommand(prepared.command(), { timeout: 0, abortSignal: controller.signal }).then(
            (value) => {
              if (waiter.done) {
                if (late !== undefined && !closed) late(value as A)
                return
              }
              stale = false
              settle(Effect.succeed(value as A))
            },
            (cause: unknown) => {
              if (waiter.done) return
              if (controller.signal.aborted) return waiter.expire()
              const error = new RedisError({ cause })
              if (!retried && lostText(String(cause))) {
                // Rare (Redis restarted): reloading may use a fiber.
                return void Effect.runPromiseExit(prepared.reload).then((exit) => {
                  if (Exit.isSuccess(exit)) attempt(true)
                  else settle(failed(operation, error))
                })
              }
              settle(failed(operation, error))
            }
          )
        }
        deadlines.track(waiter)
        attempt(false)
        return Effect.sync(() => {
          if (waiter.done) return
          waiter.done = true
          pending--
          deadlines.settled()
        })
      })
    : (() => {
      // Any other client: one fiber and one real timer per call
      // (`Effect.timeout` races two fibers and a sleep).
      const runFork = Effect.runForkWith(makeContext)
      return <A>(operation: string, prepared: Prepared<A>) =>
        Effect.callback<A, StoreUnavailable>((resume) => {
          pending++
          let done = false
          const finish = () => {
            done = true
            pending--
          }
          const run = Effect.suspend(() => {
            const [command, ...args] = prepared.command()
            return send<A>(command!, ...args)
          })
          const fiber = runFork(
            Effect.catchIf(run, (error) => lostText(String(error.cause)), () => Effect.andThen(prepared.reload, run))
          )
          const timer = setTimeout(() => {
            if (done) return
            stale = true
            finish()
            fiber.interruptUnsafe()
            resume(Effect.fail(unavailable(operation, "timeout")))
          }, timeoutMillis)
          fiber.addObserver((exit) => {
            if (done) return
            finish()
            clearTimeout(timer)
            if (Exit.isSuccess(exit)) {
              stale = false
              return resume(Effect.succeed(exit.value))
            }
            const failure = exit.cause.reasons.find((reason) => reason._tag === "Fail")
            resume(
              failure !== undefined && failure._tag === "Fail"
                ? failed(operation, failure.error)
                : Effect.failCause(exit.cause as never)
            )
          })
          return Effect.sync(() => {
            if (done) return
            finish()
            clearTimeout(timer)
            fiber.interruptUnsafe()
          })
        })
    })()

  const evalResolve = yield* load(Scripts.resolve)
  const evalIssue = yield* load(Scripts.issue)
  const evalTouch = yield* load(Scripts.touch)
  const evalRevoke = yield* load(Scripts.revoke)
  const evalRevokeThread = yield* load(Scripts.revokeThread)
  const evalRevokeBatch = yield* load(Scripts.revokeBatch)
  const evalSweepBatch = yield* load(Scripts.sweepBatch)
  const evalList = yield* load(Scripts.list)
  const evalGet = yield* load(Scripts.get)
  const evalInFlight = yield* load(Scripts.inFlight)

  const background = yield* FiberSet.make<void, never>()
  const fork = yield* FiberSet.runtime(background)<never>()
  const hookRunner = Hooks.makeHookRunner({ hooks: config.hooks, hookTimeoutMillis: config.hookTimeoutMillis, fork })
  const remoteRunner = Hooks.makeHookRunner({ hooks: [], hookTimeoutMillis: config.hookTimeoutMillis, fork })
  let closed = false

  const tallies = Metrics.emptyTallies()
  let liveSeen = 0

  // The opt-in local cache: digest -> scope and when it was read from Redis.
  const cacheMillis = redisConfig.cacheStalenessMillis
  // Counts the removals this replica has made or heard of. A removal's
  // message comes on the subscriber's connection, so it can overtake a
  // lookup's answer that Redis sent before it: a lookup caches its answer
  // only if no removal came in while it was on its way.
  let removalsSeen = 0
  // Calls in flight on this replica, by credential.
  const inFlight = new Map<string, number>()
  const cache = new Map<string, { readonly scope: CredentialScope; readonly readAt: number }>()
  const cacheIds = new Map<string, string>()
  const uncache = (credentialId: string) => {
    const digest = cacheIds.get(credentialId)
    if (digest !== undefined) {
      cacheIds.delete(credentialId)
      cache.delete(digest)
    }
  }
  // A revoke that returned drops what it names from the cache whatever its
  // reply says: an earlier attempt that timed out may have applied unseen.
  const uncacheThread = (threadId: string) => {
    for (const [digest, entry] of cache) {
      if (entry.scope.threadId === threadId) {
        cache.delete(digest)
        cacheIds.delete(entry.scope.credentialId)
      }
    }
  }
  const uncacheAll = () => {
    cache.clear()
    cacheIds.clear()
  }
  const remember = (digest: string, scope: CredentialScope, now: number) => {
    if (cache.size >= redisConfig.cacheMaxEntries && !cache.has(digest)) {
      const oldest = cache.keys().next()
      if (oldest.done !== true) {
        const entry = cache.get(oldest.value)!
        cache.delete(oldest.value)
        cacheIds.delete(entry.scope.credentialId)
      }
    }
    cache.set(digest, { scope, readAt: now })
    cacheIds.set(scope.credentialId, digest)
  }

  const capabilitiesOf = (text: string): ReadonlyArray<string> => {
    if (text === "" || text === "[]") return emptyCapabilities
    try {
      const parsed: unknown = JSON.parse(text)
      return Array.isArray(parsed) ? Object.freeze(parsed.map(String)) : emptyCapabilities
    } catch {
      return emptyCapabilities
    }
  }

  /** A credential from the fields after its id's random part (`RecordFields` from index 1). */
  const infoOf = (suffix: string, fields: ReadonlyArray<unknown>, offset: number): CredentialInfo => {
    const credentialId = credentialIdPrefix + suffix
    const issuedAt = Number(fields[offset + 3])
    const lastUsedAt = Number(fields[offset + 4])
    const leaseText = fields[offset + 5]
    const lease = leaseText === "" || leaseText === undefined || leaseText === null ? 0 : Number(leaseText)
    const expiresAt = Math.min(lastUsedAt + limits.maxLifeMillis, issuedAt + absoluteMillis)
    return {
      credentialId,
      providerSessionId: providerSessionIdPrefix + suffix,
      threadId: String(fields[offset]),
      providerInstanceId: String(fields[offset + 1]),
      capabilities: capabilitiesOf(String(fields[offset + 2] ?? "")),
      issuedAt,
      lastUsedAt,
      expiresAt,
      // A call in flight here cannot go idle; elsewhere its lease says how long.
      idleExpiresAt: inFlight.has(credentialId)
        ? expiresAt
        : Math.min(Math.max(lastUsedAt + limits.idleMillis, lease), expiresAt)
    }
  }

  /**
   * A lookup's answer, the credential's record `v|a|u|l|k|tail`, as a scope;
   * the tail is `#t|t#p|pc` with lengths in UTF-8 bytes, so text that is not
   * ASCII is cut on its bytes. Everything before it is ASCII.
   */
  const scopeOf = (suffix: string, record: string): CredentialScope => {
    // The verifier is 22 characters, then `|`.
    const afterIssued = record.indexOf("|", 23)
    const afterUsed = record.indexOf("|", afterIssued + 1)
    const afterLease = record.indexOf("|", afterUsed + 1)
    const afterHorizon = record.indexOf("|", afterLease + 1)
    const tail = record.slice(afterHorizon + 1)
    let threadId: string
    let providerInstanceId: string
    let capabilities: string
    if (Buffer.byteLength(tail) === tail.length) {
      const bar = tail.indexOf("|")
      const threadEnd = bar + 1 + Number(tail.slice(0, bar))
      const bar2 = tail.indexOf("|", threadEnd)
      const providerEnd = bar2 + 1 + Number(tail.slice(threadEnd, bar2))
      threadId = tail.slice(bar + 1, threadEnd)
      providerInstanceId = tail.slice(bar2 + 1, providerEnd)
      capabilities = tail.slice(providerEnd)
    } else {
      const bytes = Buffer.from(tail)
      const bar = bytes.indexOf(124)
      const threadEnd = bar + 1 + Number(bytes.toString("latin1", 0, bar))
      const bar2 = bytes.indexOf(124, threadEnd)
      const providerEnd = bar2 + 1 + Number(bytes.toString("latin1", threadEnd, bar2))
      threadId = bytes.toString("utf8", bar + 1, threadEnd)
      providerInstanceId = bytes.toString("utf8", bar2 + 1, providerEnd)
      capabilities = bytes.toString("utf8", providerEnd)
    }
    return infoOf(suffix, [
      threadId,
      providerInstanceId,
      capabilities,
      record.slice(23, afterIssued),
      record.slice(afterIssued + 1, afterUsed),
      record.slice(afterUsed + 1, afterLease)
    ], 0)
  }

  const eventsOf = (removed: unknown): Array<RevocationEvent> => {
    if (!Array.isArray(removed)) return []
    const events: Array<RevocationEvent> = []
    for (const item of removed) {
      if (!Array.isArray(item) || !reasons.has(String(item[0]))) continue
      const reason = String(item[0]) as RevocationReason
      events.push({ credential: infoOf(String(item[1]), item, 2), reason })
    }
    return events
  }

  /** Counts, uncaches and starts the hooks of removals this replica made; the fiber to wait for. */
  const removedHere = (removed: unknown): Fiber.Fiber<void> | undefined => {
    const events = eventsOf(removed)
    if (events.length === 0) return undefined
    removalsSeen++
    for (const event of events) {
      tallies.revokedTotal[event.reason]++
      if (cacheMillis !== undefined) uncache(event.credential.credentialId)
    }
    return hookRunner.start(events)
  }

  const waitFor = <A>(hooks: Fiber.Fiber<void> | undefined, value: A): Effect.Effect<A> =>
    hooks === undefined ? Effect.succeed(value) : Effect.as(Fiber.await(hooks), value)

  // Replies that came too late for their caller (see `call`): the removals in
  // them ran in Redis, and their hooks run nowhere else.
  const lateAt = (index: number) => (reply: ReadonlyArray<unknown>): void => void removedHere(reply[index])
  const late2 = lateAt(2)
  const late3 = lateAt(3)
  const lateResolve = (reply: string | ReadonlyArray<unknown>): void => {
    if (typeof reply !== "string" && reply.length === 2) removedHere([reply[1]])
  }

  // Refusals the host can see, as the memory store logs them: one warning per
  // once-valid credential (the script marks its tombstone, so one replica
  // logs it once), and never-valid tokens only counted, summarized at most
  // once a minute by each replica.
  const warnRefused = (suffix: string, threadId: string, providerInstanceId: string, reason: InvalidReason, leftAs: string) => {
    if (closed) return
    fork(RefusalLog.onceValidWarning({
      credentialId: credentialIdPrefix + suffix,
      providerSessionId: providerSessionIdPrefix + suffix,
      threadId,
      providerInstanceId,
      reason,
      leftAs
    }))
  }
  let neverValidDue = -Infinity
  const summarize = RefusalLog.makeNeverValidSummary(tallies.resolvedTotal, fork)
  const summarizeNeverValid = (at: number): void => {
    neverValidDue = closed ? -Infinity : summarize(at)
  }
  const neverValid = (reason: "missing" | "malformed" | "unknown"): InvalidCredential => {
    tallies.resolvedTotal[reason]++
    const at = nowMillis()
    if (at >= neverValidDue) summarizeNeverValid(at)
    return invalid[reason]
  }
  const refuse = (reason: "missing" | "malformed"): Effect.Effect<never, InvalidCredential> => Effect.fail(neverValid(reason))

  const resolve = (token: string): Effect.Effect<CredentialScope, InvalidCredential | StoreUnavailable> =>
    Effect.suspend(() => {
      if (typeof token !== "string") return refuse("malformed")
      if (token.length !== BearerToken.length) return refuse(token.length === 0 ? "missing" : "malformed")
      const key = BearerToken.digest(token)
      if (!BearerToken.checksumMatches(token, key)) return refuse("malformed")
      const now = nowMillis()
      if (cacheMillis !== undefined) {
        const cached = cache.get(key)
        if (cached !== undefined && now - cached.readAt <= cacheMillis && now <= cached.scope.idleExpiresAt) {
          tallies.resolvedTotal.ok++
          return Effect.succeed(cached.scope)
        }
      }
      const digest = Buffer.from(key, "latin1")
      const suffix = idOf(digest)
      const removalsBefore = removalsSeen
      return Effect.flatMap(call("resolve", evalResolve(common(now), suffix, verifierOf(digest), slideOnUse), lateResolve), (reply) => {
        if (typeof reply === "string") {
          tallies.resolvedTotal.ok++
          const scope = scopeOf(suffix, reply)
          if (cacheMillis !== undefined && removalsSeen === removalsBefore) remember(key, scope, now)
          return Effect.succeed(scope)
        }
        const outcome = reply[0]
        if (outcome !== "revoked" && outcome !== "idle" && outcome !== "expired") return Effect.fail(neverValid("unknown"))
        tallies.resolvedTotal[outcome]++
        if (reply.length === 4) {
          // The first refusal of a tombstone's token.
          warnRefused(suffix, String(reply[2]), String(reply[3]), outcome, String(reply[1]))
        } else if (reply.length === 2) {
          // Found dead and removed by this lookup.
          const removed = reply[1] as RemovedFields
          warnRefused(suffix, String(removed[2]), String(removed[3]), outcome, outcome)
          removedHere([removed])
        }
        return Effect.fail(invalid[outcome])
      })
    })

  // An issue refused for a timeout (or a dropped connection) may still be
  // applied later: a frozen Redis runs the script once it thaws. Nobody holds
  // that token, so the credential is revoked in the background, retried every
  // storeTimeout until Redis answers or the registry closes. On one
  // connection the revoke runs after the issue it follows.
  const withdraw = (credentialId: string) => {
    if (closed) return
    fork(Effect.gen(function*() {
      while (!closed) {
        const done = yield* revokeWith(credentialId, "revoked").pipe(
          Effect.as(true),
          Effect.catchTag("StoreUnavailable", () => Effect.succeed(false))
        )
        if (done) return
        yield* Effect.sleep(timeoutMillis)
      }
    }))
  }

  const issueOnce = (
    checked: IssueRequests.CheckedRequest
  ): Effect.Effect<IssuedCredential | RegistryFull | "collision", StoreUnavailable> =>
    Effect.suspend(() => {
      let minted = BearerToken.mintKeyed()
      let digest = Buffer.from(minted.key, "latin1")
      let suffix = idOf(digest)
      while (!usableId(suffix)) {
        minted = BearerToken.mintKeyed()
        digest = Buffer.from(minted.key, "latin1")
        suffix = idOf(digest)
      }
      const token = minted.token
      const credentialId = credentialIdPrefix + suffix
      const providerSessionId = providerSessionIdPrefix + suffix
      const capabilities = checked.capabilities === undefined || checked.capabilities.length === 0
        ? emptyCapabilities
        : Object.freeze(checked.capabilities)
      const now = nowMillis()
      return Effect.map(
        call(
          "issue",
          evalIssue(common(now), {
            id: suffix,
            verifier: verifierOf(digest),
            threadId: checked.threadId,
            providerInstanceId: checked.providerInstanceId,
            capabilities: capabilities.length === 0 ? "" : JSON.stringify(capabilities),
            replace: checked.replace,
            maxPerThread: Number.isFinite(config.maxCredentialsPerThread) ? config.maxCredentialsPerThread : -1,
            maxCredentials: Number.isFinite(config.maxCredentials) ? config.maxCredentials : -1
          }),
          late2
        ).pipe(
          Effect.tapError((error) => error.reason === "error" ? Effect.void : Effect.sync(() => withdraw(credentialId)))
        ),
        (reply): IssuedCredential | RegistryFull | "collision" => {
          if (reply[0] === "collision") return "collision"
          liveSeen = Number(reply[1])
          // The replaced credential's hooks are not waited for, as in memory.
          removedHere(reply[2])
          if (reply[0] === "thread" || reply[0] === "registry") {
            return new RegistryFull({
              scope: reply[0],
              limit: reply[0] === "thread" ? config.maxCredentialsPerThread : config.maxCredentials,
              threadId: checked.threadId
            })
          }
          tallies.issuedTotal.value++
          return {
            credentialId,
            providerSessionId,
            threadId: checked.threadId,
            providerInstanceId: checked.providerInstanceId,
            capabilities,
            token: Redacted.make(token, tokenLabel),
            authorizationHeader: Redacted.make(`Bearer ${token}`, headerLabel),
            issuedAt: now,
            expiresAt: Math.min(now + limits.maxLifeMillis, now + absoluteMillis)
          }
        }
      )
    })

  const issue = (
    request: IssueRequest
  ): Effect.Effect<IssuedCredential, RegistryFull | InvalidIssueRequest | StoreUnavailable> =>
    Effect.useSpan("McpSessionRegistry.issue", (span) =>
      Effect.suspend((): Effect.Effect<IssuedCredential, RegistryFull | InvalidIssueRequest | StoreUnavailable> => {
        const checked = IssueRequests.validate(request)
        if (IssueRequests.isProblem(checked)) return Effect.fail(new InvalidIssueRequest(checked))
        if (closed) return Effect.interrupt
        const attempt = (left: number): Effect.Effect<IssuedCredential, RegistryFull | StoreUnavailable> =>
          Effect.flatMap(issueOnce(checked), (result) => {
            if (result === "collision") {
              return left > 0 ? attempt(left - 1) : Effect.die(new Error("Could not mint an unused credential id"))
            }
            if (result instanceof RegistryFull) return Effect.fail(result)
            span.attribute("credentialId", result.credentialId)
            span.attribute("threadId", result.threadId)
            return Effect.succeed(result)
          })
        return attempt(3)
      })
    ).pipe(Effect.uninterruptible)

  const revokeWith = (credentialId: string, reason: RevocationReason) =>
    Effect.suspend(() => {
      const suffix = suffixOf(credentialId)
      if (suffix === undefined) return Effect.succeed(false)
      const now = nowMillis()
      return Effect.flatMap(
        call("revoke", evalRevoke(common(now), suffix, reason), late2),
        (reply) => {
          liveSeen = Number(reply[1])
          if (cacheMillis !== undefined) uncache(credentialId)
          return waitFor(removedHere(reply[2]), Number(reply[0]) === 1)
        }
      )
    })

  const revoke = (credentialId: string) =>
    revokeWith(credentialId, "revoked").pipe(Effect.withSpan("McpSessionRegistry.revoke"))

  const revokeProviderSession = (providerSessionId: string) =>
    Effect.suspend(() => {
      if (typeof providerSessionId !== "string" || !providerSessionId.startsWith(providerSessionIdPrefix)) {
        return Effect.succeed(0)
      }
      const credentialId = credentialIdPrefix + providerSessionId.slice(providerSessionIdPrefix.length)
      return Effect.map(revokeWith(credentialId, "session-stopped"), (live) => (live ? 1 : 0))
    }).pipe(Effect.withSpan("McpSessionRegistry.revokeProviderSession"))

  const revokeThread = (threadId: string) =>
    Effect.suspend(() => {
      if (!IssueRequests.isId(threadId)) return Effect.succeed(0)
      const now = nowMillis()
      return Effect.flatMap(call("revokeThread", evalRevokeThread(common(now), threadId, "session-stopped"), late2), (reply) => {
        liveSeen = Number(reply[1])
        if (cacheMillis !== undefined) uncacheThread(threadId)
        return waitFor(removedHere(reply[2]), Number(reply[0]))
      })
    }).pipe(Effect.withSpan("McpSessionRegistry.revokeThread"))

  // Batches, each atomic, so revoking a million never holds Redis for long;
  // a credential issued on another replica meanwhile may outlive the call.
  const revokeEverything = (reason: RevocationReason): Effect.Effect<number, StoreUnavailable> =>
    Effect.gen(function*() {
      let revoked = 0
      while (true) {
        const now = nowMillis()
        const reply = yield* call("revokeAll", evalRevokeBatch(common(now), reason, batchSize), late3)
        revoked += Number(reply[0])
        liveSeen = Number(reply[2])
        const hooks = removedHere(reply[3])
        if (hooks !== undefined) yield* Fiber.await(hooks)
        // Not "removed nothing": a batch of stale index entries (their
        // records forgotten by TTL) removes nothing, with live ones behind it.
        if (Number(reply[1]) < batchSize) break
      }
      if (cacheMillis !== undefined) uncacheAll()
      return revoked
    })

  const touch = (threadId: string): Effect.Effect<number, StoreUnavailable> =>
    Effect.suspend(() => {
      if (!IssueRequests.isId(threadId)) return Effect.succeed(0)
      const now = nowMillis()
      return Effect.map(call("touch", evalTouch(common(now), threadId), late2), (reply) => {
        liveSeen = Number(reply[1])
        // Not waited for, as in memory.
        removedHere(reply[2])
        return Number(reply[0])
      })
    })

  const sweep: Effect.Effect<number, StoreUnavailable> = Effect.gen(function*() {
    let reclaimed = 0
    while (true) {
      const now = nowMillis()
      const reply = yield* call("sweep", evalSweepBatch(common(now), batchSize), late2)
      liveSeen = Number(reply[1])
      const events = reply[2]
      reclaimed += Array.isArray(events) ? events.length : 0
      const hooks = removedHere(events)
      if (hooks !== undefined) yield* Fiber.await(hooks)
      if (Number(reply[0]) === 0) break
    }
    // The tail of a spray of never-valid tokens, once its minute is over.
    const at = nowMillis()
    if (at >= neverValidDue && neverValidDue !== -Infinity) summarizeNeverValid(at)
    return reclaimed
  }).pipe(Effect.withSpan("McpSessionRegistry.sweep"))

  const list: Effect.Effect<ReadonlyArray<CredentialInfo>, StoreUnavailable> = Effect.gen(function*() {
    const out: Array<CredentialInfo> = []
    const now = nowMillis()
    for (let offset = 0;; offset += batchSize) {
      const reply = yield* call("list", evalList(common(now), offset, batchSize))
      liveSeen = Number(reply[1])
      for (let i = 2; i < reply.length; i++) {
        const fields = reply[i] as ReadonlyArray<unknown>
        out.push(infoOf(String(fields[0]), fields, 1))
      }
      if (Number(reply[0]) === 0) break
    }
    return out
  })

  const get = (credentialId: string): Effect.Effect<Option.Option<CredentialInfo>, StoreUnavailable> =>
    Effect.suspend(() => {
      const suffix = suffixOf(credentialId)
      if (suffix === undefined) return Effect.succeed(Option.none())
      return Effect.map(
        call("get", evalGet(common(nowMillis()), suffix)),
        (reply) => (reply.length === 0 ? Option.none() : Option.some(infoOf(suffix, reply, 1)))
      )
    })

  // Redis cannot see a replica's open calls, so a heartbeat leases them:
  // every quarter of the idle timeout it moves each one's idle deadline to
  // three quarters of it from now, so it never comes within half an idle
  // timeout. A replica that dies mid-call stops renewing, and the lease lapses
  // within three quarters of an idle timeout; the lifetime caps apply throughout.
  const leaseEvery = Math.max(1, Math.floor(config.idleTimeoutMillis / 4))
  const shortCallMillis = Math.floor(config.idleTimeoutMillis / 64)
  const sideCall = (operation: string, effect: Prepared<unknown>) =>
    fork(
      call(operation, effect).pipe(
        Effect.asVoid,
        Effect.catchCause((cause) => Effect.logDebug(`McpSessionRegistry: ${operation} on Redis failed`, cause))
      )
    )

  const beginCall = (credentialId: string): Effect.Effect<() => void> =>
    Effect.sync(() => {
      if (!slideOnUse || typeof credentialId !== "string" || closed) return noop
      inFlight.set(credentialId, (inFlight.get(credentialId) ?? 0) + 1)
      const begunAt = nowMillis()
      let ended = false
      return () => {
        if (ended) return
        ended = true
        const left = (inFlight.get(credentialId) ?? 1) - 1
        if (left <= 0) inFlight.delete(credentialId)
        else inFlight.set(credentialId, left)
        if (closed) return
        const now = nowMillis()
        // A call that ends within 1/64 of the idle timeout of its start (the
        // lookup that began it was a use then) records no second use: that
        // write was a second round trip per request, half of what a guarded
        // request cost Redis, for at most 1/64 of the idle timeout of life.
        if (now - begunAt < shortCallMillis) return
        try {
          const suffix = suffixOf(credentialId)
          if (suffix !== undefined) sideCall("endCall", evalInFlight(common(now), 0, [suffix]))
        } catch {
          // Never throws: a call's end that cannot be recorded is only a use lost.
        }
      }
    })

  // Replicas share no monotonic clock, so idle time here is wall time, and
  // a host's report of sleep changes nothing.
  const reportPower = (_event: "suspend" | "resume"): Effect.Effect<void> => Effect.void

  const service = {
    issue,
    issueScoped: (request: IssueRequest) =>
      Effect.acquireRelease(
        issue(request),
        (credential) =>
          revokeWith(credential.credentialId, "session-stopped").pipe(
            Effect.catchTag("StoreUnavailable", (error) =>
              Effect.logWarning(`McpSessionRegistry: could not revoke ${credential.credentialId}`, error.message))
          )
      ),
    resolve,
    touch,
    revoke,
    revokeProviderSession,
    revokeThread,
    revokeAll: revokeEverything("revoked").pipe(Effect.withSpan("McpSessionRegistry.revokeAll")),
    list,
    get,
    onRevoke: (hook: Parameters<typeof hookRunner.register>[0]) =>
      Effect.andThen(hookRunner.register(hook), remoteRunner.register(hook)),
    sweep,
    beginCall,
    reportPower
  }

  // Removals made by other replicas: every `onRevoke` hook here hears them.
  const channel = `${base}events`
  const messages = yield* redis.subscribe(channel)
  const heard = (text: string) => {
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      return
    }
    if (!Array.isArray(parsed) || closed) return
    const events = eventsOf(parsed[1])
    if (events.length === 0) return
    removalsSeen++
    // This replica's own removals too: one whose reply came too late (a
    // frozen Redis that thawed) is heard of only here.
    if (cacheMillis !== undefined) for (const event of events) uncache(event.credential.credentialId)
    if (parsed[0] !== replicaId) remoteRunner.start(events)
  }
  yield* Effect.forkScoped(
    Effect.forever(Effect.map(Queue.take(messages), (message) => heard(message.message))).pipe(
      Effect.catchCause((cause) => Effect.logWarning("McpSessionRegistry: the Redis subscription ended", cause))
    )
  )

  const registrations = Metrics.register({ ...tallies, live: () => liveSeen }, yield* Effect.context<never>())
  yield* Effect.addFinalizer(() =>
    Effect.gen(function*() {
      closed = true
      const count = redisConfig.revokeOnShutdown
        ? yield* revokeEverything("shutdown").pipe(
          Effect.catchTag("StoreUnavailable", (error) =>
            Effect.as(Effect.logWarning("McpSessionRegistry: revokeOnShutdown failed", error.message), 0))
        )
        : 0
      yield* FiberSet.awaitEmpty(background)
      for (const registration of registrations) registration.remove()
      // Redis has not answered since a call timed out: drop the connection
      // rather than let NodeRedis's close wait for a reply that may never come.
      if (stale && nodeRedis !== undefined) nodeRedis.client.destroy()
      yield* Effect.logDebug(`McpSessionRegistry (Redis) shut down; ${count} live credentials revoked`)
    })
  )

  const heartbeat = Effect.suspend(() => {
    if (inFlight.size === 0) return Effect.void
    const now = nowMillis()
    const suffixes: Array<string> = []
    for (const credentialId of inFlight.keys()) {
      const suffix = suffixOf(credentialId)
      if (suffix !== undefined) suffixes.push(suffix)
    }
    return call("lease", evalInFlight(common(now), now + 3 * leaseEvery, suffixes))
  })
  yield* Effect.gen(function*() {
    while (!closed) {
      yield* Effect.sleep(leaseEvery)
      yield* heartbeat.pipe(
        Effect.catchTag("StoreUnavailable", (error) => Effect.logWarning("McpSessionRegistry: lease renewal failed", error.message))
      )
    }
  }).pipe(Effect.forkScoped)

  yield* Effect.gen(function*() {
    while (!closed) {
      yield* Effect.sleep(config.sweepIntervalMillis)
      yield* sweep.pipe(
        Effect.catchTag("StoreUnavailable", (error) => Effect.logWarning("McpSessionRegistry: sweep failed", error.message))
      )
    }
  }).pipe(Effect.forkScoped)

  return McpSessionRegistry.of(service)
})
