/**
 * The registry for hosts without Effect: `createRegistry` builds the same
 * `McpSessionRegistry` service the Effect layers build, on a
 * `ManagedRuntime`, and hands out its operations as Promise-returning
 * methods.
 *
 * Each method rejects with the very error classes the Effect API fails with
 * (`InvalidCredential`, `RegistryFull`, `InvalidIssueRequest`,
 * `StoreUnavailable`), so `instanceof` works on both sides, plus
 * `RegistryClosed` once `close()` has begun. On the memory store `lookup`
 * and `resolve` reach the store without starting a fiber.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Redis from "effect/persistence/Redis"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import type { CredentialInfo, CredentialScope, IssuedCredential } from "../Credential.ts"
import { InvalidCredential } from "../Credential.ts"
import { attachLiveCheck, syncLookup } from "../internal/syncLookup.ts"
import type { IssueRequest } from "../McpSessionRegistry.ts"
import { McpSessionRegistry, StoreUnavailable } from "../McpSessionRegistry.ts"
import type { Hook, Options } from "./options.ts"
import { layerOf, toRevocationHook } from "./options.ts"

/**
 * A call reached a registry whose `close()` has begun. An `issue` under way
 * when it began is refused this way too, so no credential outlives the
 * registry.
 *
 * @since 0.1.0
 */
export class RegistryClosed extends Schema.TaggedError<RegistryClosed>()("RegistryClosed", {
  /** The method that was called. */
  operation: Schema.String
}) {
  override get message(): string {
    return `The registry is closed (${this.operation})`
  }
}

/**
 * What `lookup` answers: the caller's scope, or why there is none, as a
 * value.
 *
 * @since 0.1.0
 */
export type Lookup = CredentialScope | InvalidCredential | StoreUnavailable

/**
 * A successful `lookupCall`: the caller's scope, and the end of the call it
 * began (synchronous, idempotent, counts as a use).
 *
 * @since 0.1.0
 */
export interface LookupCall {
  readonly scope: CredentialScope
  readonly end: () => void
}

/**
 * The registry, as `createRegistry` returns it. Every method but `lookup`,
 * `beginCall` and `onRevoke` returns a Promise.
 *
 * @since 0.1.0
 */
export interface Registry {
  /** Mints a credential for a thread and provider instance; its token is `Redacted` (read it with `reveal`). */
  readonly issue: (request: IssueRequest) => Promise<IssuedCredential>
  /** Authenticates a presented token; a success is a use. Rejects with `InvalidCredential` or `StoreUnavailable`. */
  readonly resolve: (token: string) => Promise<CredentialScope>
  /**
   * `resolve` without exceptions, for guards: the outcome as a value, never a
   * rejection. A plain value (no Promise, no fiber) on the memory store, a
   * Promise of one round trip on a remote store.
   */
  readonly lookup: (token: string) => Lookup | PromiseLike<Lookup>
  /**
   * Marks a call of the credential in flight, so it cannot go idle until the
   * returned function ends it (synchronous, idempotent, counts as a use).
   */
  readonly beginCall: (credentialId: string) => () => void
  /**
   * `lookup`, then `beginCall` on the credential it found, in one step: what
   * a guard does per request. On the memory store a plain value that finds
   * the credential once; on a remote store a Promise.
   */
  readonly lookupCall: (token: string) => LookupCall | InvalidCredential | StoreUnavailable | PromiseLike<
    LookupCall | InvalidCredential | StoreUnavailable
  >
  /**
   * A sign of life from a provider turn: uses every live credential of the
   * thread. Resolves to how many; 0 for a thread that should have one means it
   * died: re-issue and re-launch between turns.
   */
  readonly touch: (threadId: string) => Promise<number>
  /**
   * The host saw the machine go to sleep or wake (Electron's `powerMonitor`,
   * say): under `idleClock: "awake"` idle clocks stand still in between.
   */
  readonly reportPower: (event: "suspend" | "resume") => Promise<void>
  /** Revokes one credential (reason `revoked`); `true` if it was live. */
  readonly revoke: (credentialId: string) => Promise<boolean>
  /** Revokes the credential of a provider session (reason `session-stopped`); resolves to how many were live. */
  readonly revokeProviderSession: (providerSessionId: string) => Promise<number>
  /** Revokes every credential of a thread (reason `session-stopped`); resolves to how many were live. */
  readonly revokeThread: (threadId: string) => Promise<number>
  /** Revokes every credential (reason `revoked`); resolves to how many were live. */
  readonly revokeAll: () => Promise<number>
  /** The live credentials, without tokens. */
  readonly list: () => Promise<ReadonlyArray<CredentialInfo>>
  /** The live credential with this id, without its token, or `undefined`. Not a use. */
  readonly get: (credentialId: string) => Promise<CredentialInfo | undefined>
  /**
   * Runs `hook` for every credential that leaves the registry until the
   * returned function is called (it is idempotent). The hook may be a plain
   * or async function; a throw or a rejection is logged, never fatal.
   */
  readonly onRevoke: (hook: Hook) => () => void
  /**
   * Closes the registry: on the memory store every live credential is revoked
   * with reason `shutdown` and the hooks have run when it resolves. Calling it
   * again returns the same Promise.
   */
  readonly close: () => Promise<void>
  /** The runtime the registry lives on, for Effect code that needs `McpSessionRegistry`. Disposed by `close()`. */
  readonly runtime: ManagedRuntime.ManagedRuntime<McpSessionRegistry, never>
}

const noop = (): void => {}

// The first typed failure, else the first defect: what the Effect API would
// have failed or died with. An interruption only happens once `close()` has
// begun (an `issue` refused by the shutting-down registry, a call cut short).
const rejectionOf = (cause: Cause.Cause<unknown>, operation: string): unknown =>
  Cause.hasInterruptsOnly(cause) ? new RegistryClosed({ operation }) : Cause.squash(cause)

/**
 * Builds a registry. Rejects with `RegistryConfigError` when an option makes
 * no sense (the same checks as `McpSessionRegistry.layer`).
 *
 * ```ts
 * const registry = await createRegistry({ idleTimeout: "30 minutes" })
 * const credential = await registry.issue({ threadId: "t1", providerInstanceId: "claude-code" })
 * ```
 *
 * @since 0.1.0
 */
export const createRegistry = async (options?: Options): Promise<Registry> => {
  const runtime = ManagedRuntime.make(await layerOf(options))
  const built = await Effect.runPromiseExit(runtime.contextEffect)
  if (Exit.isFailure(built)) {
    await runtime.dispose()
    const error = rejectionOf(built.cause, "createRegistry")
    // A Promise host meets one error for a store it cannot reach, wherever.
    throw error instanceof Redis.RedisError ? new StoreUnavailable({ reason: "unreachable", operation: "createRegistry" }) : error
  }
  const service = Context.get(built.value, McpSessionRegistry)
  const sync = syncLookup(service)
  // The runtime is typed with the layer's error, which can no longer happen.
  const live = runtime as unknown as ManagedRuntime.ManagedRuntime<McpSessionRegistry, never>
  let closing: Promise<void> | undefined

  const run = <A>(operation: string, effect: Effect.Effect<A, unknown>): Promise<A> =>
    closing !== undefined
      ? Promise.reject(new RegistryClosed({ operation }))
      : live.runPromiseExit(effect).then((exit) =>
        Exit.isSuccess(exit) ? exit.value : Promise.reject(rejectionOf(exit.cause, operation))
      )

  const lookupRemote = (token: string): Promise<Lookup> =>
    live.runPromiseExit(service.resolve(token)).then(
      (exit): Lookup => {
        if (Exit.isSuccess(exit)) return exit.value
        const error = Cause.findErrorOption(exit.cause)
        return Option.isSome(error) ? error.value : new StoreUnavailable({ reason: "error", operation: "resolve" })
      },
      () => new StoreUnavailable({ reason: "error", operation: "resolve" })
    )

  const lookup: Registry["lookup"] = sync === undefined
    ? (token) => closing !== undefined ? new StoreUnavailable({ reason: "unreachable", operation: "resolve" }) : lookupRemote(token)
    : sync.lookup

  const resolve: Registry["resolve"] = sync === undefined
    ? (token) => run("resolve", service.resolve(token))
    : (token) => {
      if (closing !== undefined) return Promise.reject(new RegistryClosed({ operation: "resolve" }))
      const found = sync.lookup(token)
      // Not `instanceof`: see `resolve` in McpSessionRegistry.ts.
      return "_tag" in found ? Promise.reject(found) : Promise.resolve(found)
    }

  // A remote store tracks calls in flight locally (its `beginCall` is
  // synchronous too); a closed or failing registry has nothing to track.
  function beginRemoteCall(credentialId: string): () => void {
    if (closing !== undefined) return noop
    const exit = Effect.runSyncExit(service.beginCall(credentialId))
    return Exit.isSuccess(exit) ? exit.value : noop
  }

  const lookupCall: Registry["lookupCall"] = sync === undefined
    ? (token) => {
      const found = lookup(token)
      const begin = (outcome: Lookup) =>
        outcome instanceof InvalidCredential || outcome instanceof StoreUnavailable
          ? outcome
          : { scope: outcome, end: beginRemoteCall(outcome.credentialId) }
      return "then" in found ? found.then(begin) : begin(found)
    }
    : sync.lookupCall

  const registry: Registry = {
    issue: (request) => run("issue", service.issue(request)),
    resolve,
    lookup,
    lookupCall,
    beginCall: sync === undefined ? beginRemoteCall : sync.beginCall,
    touch: (threadId) => run("touch", service.touch(threadId)),
    reportPower: (event) => run("reportPower", service.reportPower(event)),
    revoke: (credentialId) => run("revoke", service.revoke(credentialId)),
    revokeProviderSession: (providerSessionId) =>
      run("revokeProviderSession", service.revokeProviderSession(providerSessionId)),
    revokeThread: (threadId) => run("revokeThread", service.revokeThread(threadId)),
    revokeAll: () => run("revokeAll", service.revokeAll),
    list: () => run("list", service.list),
    get: (credentialId) => run("get", Effect.map(service.get(credentialId), Option.getOrUndefined)),
    onRevoke: (hook) => {
      if (typeof hook !== "function") throw new TypeError("onRevoke takes a function")
      if (closing !== undefined) return noop
      const scope = Scope.makeUnsafe()
      Effect.runSync(Scope.provide(scope)(service.onRevoke(toRevocationHook(hook))))
      let registered = true
      return () => {
        if (!registered) return
        registered = false
        Effect.runSync(Scope.close(scope, Exit.void))
      }
    },
    close: () => (closing ??= runtime.dispose()),
    runtime: live
  }
  // The guards ask it before reading a body (see `SyncLookup.isLive`).
  if (sync !== undefined) attachLiveCheck(registry, sync.isLive)
  return registry
}
