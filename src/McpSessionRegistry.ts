/**
 * Per-session MCP bearer credentials for hosts that spawn coding agents.
 *
 * A host runs an MCP server in its own process and spawns agent CLIs (Claude
 * Code, Codex, Gemini CLI, OpenCode) that call back into it. Each agent session
 * gets its own random bearer token, injected once at spawn, which cannot be
 * rotated under the running process. The `McpSessionRegistry` service mints
 * those tokens, scoped to a thread and a provider instance, and resolves them
 * on every request:
 *
 * - every successful `resolve` or `touch` is a use: the idle clock restarts and
 *   the expiry slides forward, so a healthy long session is never cut off
 *   (with `slideOnUse: false`, only `touch` is);
 * - a call in flight (`beginCall`, which the guards call) cannot go idle, and
 *   its end is a use;
 * - a credential dies after `idleTimeout` without use (counting only time the
 *   machine was awake, by default), after `maxLifetime` without use, or at
 *   `absoluteLifetime` from issue if that cap is set;
 * - revocation hooks run exactly once per credential, whatever the way out,
 *   including the layer's shutdown;
 * - time comes from `Clock`, so a host's tests drive every timeout with
 *   `TestClock`;
 * - lookups, uses, issues and single revocations cost O(1) in the number of
 *   live credentials, and only a SHA-256 digest of each token is kept.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redis from "effect/persistence/Redis"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type { CredentialInfo, CredentialScope, IssuedCredential } from "./Credential.ts"
import { InvalidCredential, InvalidReason } from "./Credential.ts"
import * as Hooks from "./internal/hooks.ts"
import * as IssueRequests from "./internal/issueRequest.ts"
import * as Metrics from "./internal/metrics.ts"
import { counted } from "./internal/plural.ts"
import * as RefusalLog from "./internal/refusalLog.ts"
import { type Entry, smallIntegerSpan, Store } from "./internal/store.ts"
import * as SyncLookup from "./internal/syncLookup.ts"
import * as RedisRegistry from "./redis/registry.ts"
import * as RegistryConfig from "./RegistryConfig.ts"
import type { RevocationEvent, RevocationHook, RevocationReason } from "./Revocation.ts"

/**
 * What `issue` needs to mint a credential.
 *
 * @since 0.1.0
 */
export interface IssueRequest {
  /** The conversation or task the agent works on. */
  readonly threadId: string
  /** The provider instance (Claude Code, Codex, ...) that will present the token. */
  readonly providerInstanceId: string
  /** Free-form capability names a guard may require; empty by default. */
  readonly capabilities?: ReadonlyArray<string> | undefined
  /**
   * Whether a live credential of the same thread and provider instance is
   * replaced (its hooks run with reason `replaced`). Default `true`.
   */
  readonly replace?: boolean | undefined
}

/**
 * `issue` refused because a cap would be exceeded. Live credentials are never
 * evicted to make room.
 *
 * @since 0.1.0
 */
export class RegistryFull extends Schema.TaggedError<RegistryFull>()("RegistryFull", {
  /** `registry` for `maxCredentials`, `thread` for `maxCredentialsPerThread`. */
  scope: Schema.Literals(["registry", "thread"]),
  limit: Schema.Number,
  threadId: Schema.String
}) {
  override get message(): string {
    return this.scope === "registry"
      ? `The registry holds its maximum of ${counted(this.limit, "live credential")}`
      : `Thread ${JSON.stringify(this.threadId)} holds its maximum of ${counted(this.limit, "live credential")}`
  }
}

/**
 * The credential store could not answer: Redis was unreachable, did not
 * answer within `storeTimeout`, or answered with an error. Nothing about the
 * credential is known, so a guard answers 503 with `Retry-After` (never 401:
 * the token may well be live). The in-memory store never fails this way.
 *
 * @since 0.1.0
 */
export class StoreUnavailable extends Schema.TaggedError<StoreUnavailable>()("StoreUnavailable", {
  /** `timeout`: no answer within `storeTimeout`; `unreachable`: no connection; `error`: the store refused the command. */
  reason: Schema.Literals(["timeout", "unreachable", "error"]),
  /** The registry operation that failed, such as `resolve` or `issue`. */
  operation: Schema.String
}) {
  override get message(): string {
    return this.reason === "timeout"
      ? `The credential store did not answer ${this.operation} in time`
      : this.reason === "unreachable"
      ? `The credential store is unreachable (${this.operation})`
      : `The credential store failed ${this.operation}`
  }
}

/**
 * `issue` was called with a request it cannot honour: a missing or oversized
 * thread or provider instance id, or capabilities that are not strings.
 *
 * @since 0.1.0
 */
export class InvalidIssueRequest extends Schema.TaggedError<InvalidIssueRequest>()("InvalidIssueRequest", {
  field: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `Invalid issue request: ${this.field} ${this.detail}`
  }
}

/**
 * The registry service.
 *
 * @since 0.1.0
 */
export class McpSessionRegistry extends Context.Service<McpSessionRegistry, {
  /**
   * Mints a credential for a thread and provider instance. Once the layer has
   * begun to close, it mints nothing and interrupts the caller.
   */
  readonly issue: (
    request: IssueRequest
  ) => Effect.Effect<IssuedCredential, RegistryFull | InvalidIssueRequest | StoreUnavailable>
  /** `issue`, revoked with reason `session-stopped` when the scope closes. */
  readonly issueScoped: (
    request: IssueRequest
  ) => Effect.Effect<IssuedCredential, RegistryFull | InvalidIssueRequest | StoreUnavailable, Scope.Scope>
  /**
   * Authenticates a presented token; a success is a use that slides its
   * expiry (unless `slideOnUse` is `false`).
   */
  readonly resolve: (token: string) => Effect.Effect<CredentialScope, InvalidCredential | StoreUnavailable>
  /**
   * Marks one call of the credential in flight, after a successful `resolve`:
   * until the returned function is called the credential cannot go idle
   * (`maxLifetime` and `absoluteLifetime` still apply). The returned function
   * ends the call: synchronous, idempotent, never throws, and a use at that
   * instant. A no-op for an unknown or dead credential and under
   * `slideOnUse: false`.
   */
  readonly beginCall: (credentialId: string) => Effect.Effect<() => void>
  /**
   * A sign of life from a provider turn: uses every live credential of the
   * thread. Returns how many; 0 for a thread that should have one means it
   * died: re-issue and re-launch the agent between turns.
   */
  readonly touch: (threadId: string) => Effect.Effect<number, StoreUnavailable>
  /**
   * Tells the registry that the machine is about to sleep (`"suspend"`) or has
   * woken (`"resume"`), as a host observes it (Electron's `powerMonitor`, a
   * systemd sleep hook). Under `idleClock: "awake"` the idle clocks stand
   * still in between, for platforms whose monotonic clock counts sleep
   * (macOS, Windows). A repeated `"suspend"` keeps the first; a `"resume"`
   * without one does nothing; a no-op under `idleClock: "wall"`.
   */
  readonly reportPower: (event: "suspend" | "resume") => Effect.Effect<void>
  /** Revokes one credential (reason `revoked`); `true` if it was live. */
  readonly revoke: (credentialId: string) => Effect.Effect<boolean, StoreUnavailable>
  /** Revokes the credential of a provider session (reason `session-stopped`); returns how many were live. */
  readonly revokeProviderSession: (providerSessionId: string) => Effect.Effect<number, StoreUnavailable>
  /** Revokes every credential of a thread (reason `session-stopped`); returns how many were live. */
  readonly revokeThread: (threadId: string) => Effect.Effect<number, StoreUnavailable>
  /** Revokes every credential (reason `revoked`); returns how many were live. */
  readonly revokeAll: Effect.Effect<number, StoreUnavailable>
  /** The live credentials, without tokens. */
  readonly list: Effect.Effect<ReadonlyArray<CredentialInfo>, StoreUnavailable>
  /**
   * The live credential with this id, without its token, or `Option.none()`
   * for an unknown, revoked or dead one (one past a deadline reads as none
   * before the sweeper reclaims it, as in `list`). Not a use: the expiry does
   * not slide, so a host can check a credential without keeping it alive.
   */
  readonly get: (credentialId: string) => Effect.Effect<Option.Option<CredentialInfo>, StoreUnavailable>
  /** Runs `hook` for every credential that leaves the registry while the scope is open. */
  readonly onRevoke: (hook: RevocationHook) => Effect.Effect<void, never, Scope.Scope>
  /** Reclaims dead credentials now, as the background sweeper does; returns how many. */
  readonly sweep: Effect.Effect<number, StoreUnavailable>
}>()("mcp-session-registry/McpSessionRegistry") {}

/**
 * The most credentials the sweeper examines before it yields to the event
 * loop. It also yields once a chunk has run for `sweepChunkMillis`, whichever
 * comes first.
 *
 * @since 0.1.0
 */
export const sweepChunkSize = 4096

/**
 * How long, in milliseconds of the registry's monotonic clock, the sweeper
 * works before it yields to the event loop. Removing a credential costs 1-4 µs
 * on a busy machine, more while V8 rehashes an index, so a count alone cannot
 * bound the stall.
 *
 * @since 0.1.0
 */
export const sweepChunkMillis = 4

const tokenLabel = { label: "McpSessionToken" } as const
const headerLabel = { label: "McpSessionAuthorization" } as const

const noop = (): void => {}

/** How long, in wall time, the awake clock runs on one monotonic reading. */
const awakeAnchorMillis = 1000

/** How often, at most, refusals of never-valid tokens are summarized in the log. */

// One error value per reason: refusing a sprayed token must not allocate.
const invalid: Record<InvalidReason, InvalidCredential> = Object.fromEntries(
  InvalidReason.literals.map((reason) => [reason, new InvalidCredential({ reason })])
) as Record<InvalidReason, InvalidCredential>

// Credentials past a deadline stay in the store until a lookup or the sweeper
// reclaims them, so the live count is taken at read time: O(n) per snapshot,
// nothing per request, and always equal to what `list` returns at that instant.
const liveCount = (store: Store, now: number): number => {
  const idle = store.idleClock(now)
  let live = 0
  for (const entry of store.byId.values()) {
    if (store.deadReason(entry, now, idle) === undefined) live++
  }
  return live
}

const tallies = (store: Store, clock: Clock.Clock): Metrics.Tallies => ({
  live: () => liveCount(store, clock.currentTimeMillisUnsafe()),
  issuedTotal: store.issuedTotal,
  resolvedTotal: store.resolvedTotal,
  revokedTotal: store.revokedTotal
})

/**
 * Builds the service in the current scope. Closing the scope revokes every
 * credential with reason `shutdown` and waits for the hooks.
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(options?: RegistryConfig.Options) {
  const config = yield* RegistryConfig.resolve(options)
  // The clock of the context the registry is built in, read once: the sweeper
  // and every call then share one time (a `TestClock` under `it.effect` or
  // `it.layer`), and `resolve` skips a service lookup per request.
  const clock = yield* Clock.Clock
  const store = new Store(config)
  const background = yield* FiberSet.make<void, never>()
  // Forks synchronously, so a credential's removal and the start of its hooks
  // are one step that no interruption can fall between.
  const fork = yield* FiberSet.runtime(background)<never>()
  let closed = false
  const now = () => clock.currentTimeMillisUnsafe()

  // The awake clock: the Clock's monotonic time, less the sleeps a host
  // reported. It stands still from a reported suspend to its resume, so only
  // awake time the monotonic clock counted in between is taken out: on Linux,
  // where it stops during sleep anyway, a report changes nothing.
  let reportedSleepMillis = 0
  let suspendedAt: number | undefined
  // Whole milliseconds, as is wall time: see `idleOrigin` below.
  const monotonicMillis = () => Number(clock.monotonicTimeNanosUnsafe() / 1_000_000n)
  // Reading the monotonic clock costs a lookup as much as the rest of its
  // bookkeeping on some machines (a bigint from hrtime, a syscall on VMs), so
  // within `awakeAnchorMillis` of wall time after a reading the awake clock
  // advances with the wall time the caller read anyway. A sleep shows up as a
  // wall jump past that window (and a clock set back, as a negative one), so
  // it is always read afresh then; the error is under a second of idle time,
  // and the wall-time caps are never touched.
  let anchorWall = -Infinity
  let anchorAwake = 0
  const awakeMillis = (wall: number): number => {
    const elapsed = wall - anchorWall
    if (elapsed >= 0 && elapsed <= awakeAnchorMillis) return anchorAwake + elapsed
    anchorWall = wall
    anchorAwake = monotonicMillis()
    return anchorAwake
  }
  // Idle readings are kept relative to the registry's start, in whole
  // milliseconds, as the store keeps wall times (see `Store.wallOrigin`):
  // small integers V8 stores in the entry itself, for the first 23 days.
  if (config.idleClock === "awake") {
    const idleOrigin = monotonicMillis() + smallIntegerSpan
    store.idleClock = (wall) => (suspendedAt ?? awakeMillis(wall)) - reportedSleepMillis - idleOrigin
  } else {
    const idleOrigin = now() + smallIntegerSpan
    store.idleClock = (wall) => wall - idleOrigin
  }
  const reportPower = (event: "suspend" | "resume"): Effect.Effect<void> =>
    Effect.sync(() => {
      if (config.idleClock !== "awake") return
      if (event === "suspend") {
        if (suspendedAt === undefined) suspendedAt = monotonicMillis()
      } else if (event === "resume" && suspendedAt !== undefined) {
        reportedSleepMillis += Math.max(0, monotonicMillis() - suspendedAt)
        suspendedAt = undefined
      }
    })

  // Refusals the host can see. Logged from the registry's own fibers, so a
  // lookup that runs without one (the Promise API) is logged the same way.
  store.onRefusedOnceValid = (entry: Entry, reason) => {
    fork(RefusalLog.onceValidWarning({
      credentialId: entry.credentialId,
      providerSessionId: entry.providerSessionId,
      threadId: entry.threadId,
      providerInstanceId: entry.providerInstanceId,
      reason,
      leftAs: entry.leftAs ?? reason
    }))
  }
  // Tokens that were never valid are only counted: at most one summary a
  // minute, so spraying cannot flood the log. The first refusal after a quiet
  // spell is reported at once; the sweeper reports the tail of a spray.
  const summarize = RefusalLog.makeNeverValidSummary(store.resolvedTotal, fork)
  const summarizeNeverValid = (at: number): void => {
    store.neverValidDue = summarize(at)
  }
  store.onRefusedNeverValid = summarizeNeverValid
  store.neverValidDue = -Infinity

  const hookRunner = Hooks.makeHookRunner({ hooks: config.hooks, hookTimeoutMillis: config.hookTimeoutMillis, fork })
  const startHooks = hookRunner.start

  /** Runs a synchronous store operation, then waits for the hooks of what it removed. */
  const withEvents = <A>(f: (now: number, events: Array<RevocationEvent>) => A): Effect.Effect<A> =>
    Effect.suspend(() => {
      const events: Array<RevocationEvent> = []
      const result = f(now(), events)
      const hooksRunning = startHooks(events)
      return hooksRunning === undefined ? Effect.succeed(result) : Effect.as(Fiber.await(hooksRunning), result)
    })

  // One synchronous step inside a span, without `Effect.fn`: that captures a
  // call-site stack (a `new Error()`) on every call, and `withSpan` makes the
  // span the parent of the rest of the call, which rebuilds the fiber's
  // context; nothing in here logs or makes child spans. Profiles showed both
  // among the largest costs of an issue.
  const issue = (request: IssueRequest): Effect.Effect<IssuedCredential, RegistryFull | InvalidIssueRequest> =>
    Effect.uninterruptible(Effect.useSpan("McpSessionRegistry.issue", (span): Effect.Effect<
      IssuedCredential,
      RegistryFull | InvalidIssueRequest
    > => {
      const checked = IssueRequests.validate(request)
      if (IssueRequests.isProblem(checked)) return Effect.fail(new InvalidIssueRequest(checked))
      // Checked in the same step as the store operation: once shutdown began,
      // nothing is minted that could outlive it. The replaced credential's
      // hooks run in the registry's fibers without being waited for, and the
      // whole call is uninterruptible (it never waits), so an interrupted
      // caller cannot leave a live credential whose token nobody holds.
      const events: Array<RevocationEvent> = []
      const issued = closed ? undefined : store.issue(checked, now(), events)
      startHooks(events)
      if (issued === undefined) return Effect.interrupt
      if ("_tag" in issued) {
        return Effect.fail(new RegistryFull({ scope: issued.scope, limit: issued.limit, threadId: checked.threadId }))
      }
      const { entry, token } = issued
      span.attribute("credentialId", entry.credentialId)
      span.attribute("threadId", entry.threadId)
      return Effect.succeed<IssuedCredential>({
        credentialId: entry.credentialId,
        providerSessionId: entry.providerSessionId,
        threadId: entry.threadId,
        providerInstanceId: entry.providerInstanceId,
        capabilities: entry.capabilities,
        token: Redacted.make(token, tokenLabel),
        authorizationHeader: Redacted.make(`Bearer ${token}`, headerLabel),
        issuedAt: store.issuedAt(entry),
        expiresAt: store.expiresAt(entry)
      })
    }))

  // A plain function, so the Promise registry and the node/Web guards look a
  // token up without a fiber (see internal/syncLookup.ts); `resolve` wraps it.
  const lookup = (token: string): CredentialScope | InvalidCredential => {
    const at = clock.currentTimeMillisUnsafe()
    const idle = store.idleClock(at)
    const found = store.resolve(token, at, idle)
    if (typeof found !== "string") return store.info(found, at, idle)
    if (store.reclaimed.length !== 0) {
      startHooks(store.reclaimed)
      store.reclaimed = []
    }
    return invalid[found]
  }

  const beginCall = (credentialId: string): () => void => store.beginCall(credentialId, now(), now) ?? noop

  // What a guard does per request, in one step: the credential found by the
  // lookup is the one whose call begins, so it is not looked up twice.
  const lookupCall = (token: string): SyncLookup.LookupCall | InvalidCredential => {
    const at = clock.currentTimeMillisUnsafe()
    const idle = store.idleClock(at)
    const found = store.resolve(token, at, idle)
    if (typeof found !== "string") return { scope: store.info(found, at, idle), end: store.beginCallOn(found, now) ?? noop }
    if (store.reclaimed.length !== 0) {
      startHooks(store.reclaimed)
      store.reclaimed = []
    }
    return invalid[found]
  }

  // One primitive per call: `resolve` runs on every MCP request.
  const resolve = (token: string): Effect.Effect<CredentialScope, InvalidCredential> =>
    Effect.suspend(() => {
      const found = lookup(token)
      // A scope has no `_tag`. Testing for it costs about a nanosecond, where
      // `instanceof InvalidCredential` measured 30-80 ns a call here, on
      // every request.
      return "_tag" in found ? Effect.fail(found) : Effect.succeed(found)
    })

  const revokeWith = (credentialId: string, reason: RevocationReason) =>
    withEvents((now, events) => {
      const entry = store.byCredentialId(credentialId)
      return entry !== undefined && store.revoke(entry, reason, now, events)
    })

  const revoke = Effect.fn("McpSessionRegistry.revoke")(function*(credentialId: string) {
    return yield* revokeWith(credentialId, "revoked")
  })

  const revokeProviderSession = Effect.fn("McpSessionRegistry.revokeProviderSession")(
    function*(providerSessionId: string) {
      return yield* withEvents((now, events) => {
        const entry = store.byProviderSessionId(providerSessionId)
        return entry !== undefined && store.revoke(entry, "session-stopped", now, events) ? 1 : 0
      })
    }
  )

  const revokeThread = Effect.fn("McpSessionRegistry.revokeThread")(function*(threadId: string) {
    return yield* withEvents((now, events) =>
      typeof threadId === "string" ? store.revokeThread(threadId, "session-stopped", now, events) : 0
    )
  })

  const revokeEverything = (reason: RevocationReason) =>
    withEvents((now, events) => {
      let live = 0
      for (const entry of Array.from(store.byId.values())) {
        if (store.revoke(entry, reason, now, events)) live++
      }
      return live
    })

  const touch = (threadId: string): Effect.Effect<number> =>
    Effect.suspend(() => {
      if (typeof threadId !== "string") return Effect.succeed(0)
      const events: Array<RevocationEvent> = []
      const touched = store.touch(threadId, now(), events)
      startHooks(events)
      return Effect.succeed(touched)
    })

  // Works in chunks bounded by count and by time, and yields between them, so
  // reclaiming a million credentials never holds the event loop for long.
  const sweep: Effect.Effect<number> = Effect.gen(function*() {
    const iterator = store.byId.values()
    const budget = BigInt(sweepChunkMillis * 1_000_000)
    let reclaimed = 0
    while (true) {
      const done = yield* withEvents((at, events) => {
        const idle = store.idleClock(at)
        const deadline = clock.monotonicTimeNanosUnsafe() + budget
        let finished = false
        for (let examined = 0; examined < sweepChunkSize; examined++) {
          // The shards of an index empty together, so several rehash within a
          // few removals of each other: the clock is read every 4th removal
          // (a read costs a few percent of one).
          if ((examined & 3) === 3 && clock.monotonicTimeNanosUnsafe() > deadline) break
          const step = iterator.next()
          if (step.done === true) {
            finished = true
            break
          }
          const entry = step.value
          if (!entry.removed) {
            const dead = store.deadReason(entry, at, idle)
            if (dead !== undefined) events.push(store.remove(entry, dead, at, idle))
          }
        }
        reclaimed += events.length
        return finished
      })
      if (done) break
      yield* Effect.yieldNow
    }
    const at = now()
    store.pruneTombstones(at)
    if (at >= store.neverValidDue && store.neverValidDue !== -Infinity) summarizeNeverValid(at)
    return reclaimed
  }).pipe(Effect.withSpan("McpSessionRegistry.sweep"))

  const service = McpSessionRegistry.of({
    issue,
    issueScoped: (request) =>
      Effect.acquireRelease(issue(request), (credential) => revokeWith(credential.credentialId, "session-stopped")),
    resolve,
    beginCall: (credentialId) => Effect.sync(() => beginCall(credentialId)),
    touch,
    reportPower,
    revoke,
    revokeProviderSession,
    revokeThread,
    revokeAll: revokeEverything("revoked").pipe(Effect.withSpan("McpSessionRegistry.revokeAll")),
    list: Effect.sync(() => store.list(now())),
    // Reads only: a dead credential is left for the sweeper or the next
    // lookup to reclaim, so no hook runs from here and the caller never waits.
    get: (credentialId) =>
      Effect.sync(() => {
        const entry = store.byCredentialId(credentialId)
        const at = now()
        return entry === undefined || store.deadReason(entry, at) !== undefined
          ? Option.none()
          : Option.some(store.info(entry, at))
      }),
    onRevoke: hookRunner.register,
    sweep
  })

  const isLive = (token: string): boolean => {
    const at = clock.currentTimeMillisUnsafe()
    return typeof token === "string" && store.isLive(token, at)
  }

  const sync: SyncLookup.SyncLookup = { lookup, beginCall, lookupCall, isLive }
  SyncLookup.attach(service, sync)
  // `guard.fromService` hands this very object to the guards.
  SyncLookup.attachLiveCheck(sync, isLive)

  const registrations = Metrics.register(tallies(store, clock), yield* Effect.context<never>())
  yield* Effect.addFinalizer(() =>
    Effect.gen(function*() {
      closed = true
      const count = yield* revokeEverything("shutdown")
      yield* FiberSet.awaitEmpty(background)
      for (const registration of registrations) registration.remove()
      yield* Effect.logDebug(`McpSessionRegistry shut down; ${counted(count, "live credential")} revoked`)
    })
  )

  yield* Effect.gen(function*() {
    while (!closed) {
      yield* Effect.sleep(config.sweepIntervalMillis)
      yield* sweep
    }
  }).pipe(Effect.forkScoped)

  return service
})

/**
 * The registry as a Layer with no other requirements.
 *
 * @since 0.1.0
 */
export const layer = (options?: RegistryConfig.Options): Layer.Layer<McpSessionRegistry, RegistryConfig.RegistryConfigError> =>
  Layer.effect(McpSessionRegistry, make(options))

/**
 * The registry with its options read from the environment (see
 * `RegistryConfig.environment`). A missing variable keeps the default; a bad
 * one fails the layer with a `RegistryConfigError`.
 *
 * @since 0.1.0
 */
export const layerConfig: Layer.Layer<McpSessionRegistry, RegistryConfig.RegistryConfigError> = Layer.effect(
  McpSessionRegistry,
  Effect.gen(function*() {
    const options = yield* RegistryConfig.config.pipe(
      Effect.mapError((error) =>
        new RegistryConfig.RegistryConfigError({ option: "environment", value: "", detail: error.message })
      )
    )
    return yield* make(options)
  })
)

/**
 * Options of `layerRedis`: every option of `layer`, plus `keyPrefix`,
 * `revokeOnShutdown`, `storeTimeout` and `localCache`.
 *
 * @since 0.1.0
 */
export type RedisOptions = RedisRegistry.RedisOptions

/**
 * The registry with its state in Redis (or Valkey), shared by every replica
 * built on the same `keyPrefix`: any replica resolves any credential, and a
 * revoke on one holds on all once it returns. Needs `effect/persistence/Redis`'s
 * `Redis` service, such as `@effect/platform-node`'s `NodeRedis.layer`.
 * Closing it revokes nothing unless `revokeOnShutdown` is set. Idle time is
 * wall time here: replicas share no monotonic clock. See docs/redis.md.
 *
 * @since 0.1.0
 */
export const layerRedis = (
  options?: RedisOptions
): Layer.Layer<McpSessionRegistry, RegistryConfig.RegistryConfigError | Redis.RedisError, Redis.Redis> =>
  Layer.effect(McpSessionRegistry, RedisRegistry.make(options))

/**
 * Builds the Redis registry in the current scope (what `layerRedis` runs).
 *
 * @since 0.1.0
 */
export const makeRedis: (
  options?: RedisOptions
) => Effect.Effect<McpSessionRegistry["Service"], RegistryConfig.RegistryConfigError | Redis.RedisError, Redis.Redis | Scope.Scope> =
  RedisRegistry.make
