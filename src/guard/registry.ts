/**
 * The registry as the node and Web guards see it: a lookup that answers
 * without a fiber where the store can (memory), and the in-flight marker.
 *
 * The Promise registry (`createRegistry()` from
 * `mcp-session-registry/promise`) is one as it is; `fromService` makes one of
 * a built Effect `McpSessionRegistry` service.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import type { CredentialScope } from "../Credential.ts"
import { syncLookup } from "../internal/syncLookup.ts"
import type { McpSessionRegistry } from "../McpSessionRegistry.ts"
import type { LookupFailure } from "./rules.ts"

/**
 * What a lookup answers: the caller's scope, or why there is none, as a value
 * (`InvalidCredential`, `StoreUnavailable`).
 *
 * @since 0.1.0
 */
export type Lookup = CredentialScope | LookupFailure

/**
 * What a `lookupCall` answers: the caller's scope and the end of its call, or
 * why there is none, as a value.
 *
 * @since 0.1.0
 */
export type CallLookup = { readonly scope: CredentialScope; readonly end: () => void } | LookupFailure

/**
 * What the node and Web guards need of a registry.
 *
 * @since 0.1.0
 */
export interface GuardRegistry {
  /**
   * Authenticates a token, a use that slides its expiry. Answers a plain
   * value where the store can (no Promise, no fiber), a Promise where it
   * cannot (Redis). A throw or a rejection is a defect: the guard logs it and
   * refuses with 401 `unverifiable`.
   */
  readonly lookup: (token: string) => Lookup | PromiseLike<Lookup>
  /**
   * Marks one call of the credential in flight (it cannot go idle meanwhile);
   * the returned function ends it, synchronous and idempotent.
   */
  readonly beginCall: (credentialId: string) => () => void
  /**
   * `lookup` and, on a success, `beginCall` in one step, finding the
   * credential once. Used instead of the two when the registry has it (the
   * Promise registry and the memory store do).
   */
  readonly lookupCall?: ((token: string) => CallLookup | PromiseLike<CallLookup>) | undefined
}

const noop = () => {}

/**
 * A `GuardRegistry` over a built Effect registry service: its fiber-free
 * lookup where the store has one, else `resolve` run as a Promise.
 *
 * @since 0.1.0
 */
export const fromService = (service: McpSessionRegistry["Service"]): GuardRegistry => {
  const sync = syncLookup(service)
  if (sync !== undefined) return sync
  const beginCall = (service as { readonly beginCall?: (id: string) => Effect.Effect<() => void> }).beginCall
  return {
    lookup: (token) =>
      Effect.runPromiseExit(service.resolve(token)).then((exit): Lookup => {
        if (Exit.isSuccess(exit)) return exit.value
        const error = Cause.findErrorOption(exit.cause)
        if (Option.isSome(error)) return error.value
        throw Cause.squash(exit.cause)
      }),
    beginCall: beginCall === undefined ? () => noop : (credentialId) => Effect.runSync(beginCall(credentialId))
  }
}
