/**
 * Running revocation hooks, shared by every store: the hooks given in the
 * options plus the ones `onRevoke` registers, each bounded by the hook
 * timeout, started exactly once per batch of removed credentials.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type { RevocationEvent, RevocationHook } from "../Revocation.ts"
import { counted } from "./plural.ts"

// How many events one hook handles at once. A hook that outlives its timeout
// once is skipped for the rest of that batch (one warning says how many), so
// a call that removes any number of credentials, shutdown included, waits
// about two hook timeouts at worst, and a hanging hook cannot flood the log.
// Starting all at once was measured slower and far heavier: 100,000 credentials
// with a 10 ms hook took 20 s and a 1 GB heap peak, against 5 s and 180 MB.
const hookConcurrency = 256

// A hook written as an async function, outside the types (a JavaScript host),
// returns a promise: it is awaited, so its rejection is logged like any hook
// failure instead of going unhandled, which would end a Node process.
const asEffect = (result: unknown): Effect.Effect<unknown, unknown> =>
  Effect.isEffect(result)
    ? result as Effect.Effect<unknown, unknown>
    : result !== null && typeof result === "object" && typeof (result as PromiseLike<unknown>).then === "function"
    ? Effect.tryPromise(() => Promise.resolve(result as PromiseLike<unknown>))
    : Effect.die(new TypeError("A revocation hook returned neither an Effect nor a promise"))

/** The hooks of one registry and the way to start them. */
export interface HookRunner {
  /**
   * Starts every current hook over `events` in the registry's own fibers, in
   * this synchronous step; `undefined` when there is nothing to run. The
   * caller may wait for the fiber; interrupting the caller never cuts a hook
   * short.
   */
  readonly start: (events: ReadonlyArray<RevocationEvent>) => Fiber.Fiber<void> | undefined
  /** Registers `hook` while the scope is open (`onRevoke`). */
  readonly register: (hook: RevocationHook) => Effect.Effect<void, never, Scope.Scope>
  /** Whether any hook is registered now. */
  readonly any: () => boolean
}

/**
 * Builds the runner. `fork` must start its effect synchronously in a fiber
 * set the registry waits for at shutdown (`FiberSet.runtime`).
 */
export const makeHookRunner = (options: {
  readonly hooks: ReadonlyArray<RevocationHook>
  readonly hookTimeoutMillis: number
  readonly fork: (effect: Effect.Effect<void>) => Fiber.Fiber<void>
}): HookRunner => {
  const { fork, hookTimeoutMillis } = options
  const scopedHooks = new Set<RevocationHook>()
  let hooks: ReadonlyArray<RevocationHook> = options.hooks

  /** `onAbandon` answers whether this is the batch's first timeout, the only one logged. */
  const runHook = (hook: RevocationHook, event: RevocationEvent, onAbandon: () => boolean): Effect.Effect<void> =>
    Effect.suspend(() => asEffect(hook(event))).pipe(
      Effect.timeoutOption(hookTimeoutMillis),
      Effect.flatMap((done) =>
        Option.isSome(done) || !onAbandon()
          ? Effect.void
          : Effect.logWarning(`Revocation hook abandoned after ${hookTimeoutMillis} ms`)
      ),
      Effect.catchCause((cause) => Effect.logWarning("Revocation hook failed", Cause.pretty(cause))),
      Effect.annotateLogs({ credentialId: event.credential.credentialId, reason: event.reason })
    )

  const runHookOver = (hook: RevocationHook, events: ReadonlyArray<RevocationEvent>): Effect.Effect<void> => {
    let stuck = false
    let skipped = 0
    const abandon = () => {
      if (stuck) {
        skipped++
        return false
      }
      stuck = true
      return true
    }
    return Effect.forEach(events, (event) => {
      if (!stuck) return runHook(hook, event, abandon)
      skipped++
      return Effect.void
    }, { concurrency: hookConcurrency, discard: true }).pipe(
      Effect.andThen(Effect.suspend(() =>
        skipped === 0
          ? Effect.void
          : Effect.logWarning(
            `Revocation hook abandoned or skipped for ${counted(skipped, "more credential")} after it timed out`
          )
      ))
    )
  }

  // Hooks run in the registry's own fibers, started in the same synchronous
  // step that removed their credentials; callers only wait for them. So a
  // caller interrupted while it waits (a request whose client went away, the
  // sweeper stopped at shutdown) cannot cut a hook short or skip it, and
  // shutdown waits for every one. The hooks are read at that step too, so a
  // hook sees exactly the events that happened while it was registered.
  const start = (events: ReadonlyArray<RevocationEvent>): Fiber.Fiber<void> | undefined => {
    const current = hooks
    if (events.length === 0 || current.length === 0) return undefined
    // Each hook works through the events on its own, so a slow or hanging
    // hook delays only itself, never another hook's view of later events.
    return fork(Effect.forEach(current, (hook) => runHookOver(hook, events), { concurrency: "unbounded", discard: true }))
  }

  const register = (hook: RevocationHook): Effect.Effect<void, never, Scope.Scope> =>
    Effect.acquireRelease(
      Effect.sync(() => {
        scopedHooks.add(hook)
        hooks = [...options.hooks, ...scopedHooks]
      }),
      () =>
        Effect.sync(() => {
          scopedHooks.delete(hook)
          hooks = [...options.hooks, ...scopedHooks]
        })
    )

  return { start, register, any: () => hooks.length > 0 }
}
