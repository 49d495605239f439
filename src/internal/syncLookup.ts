/**
 * The registry's lookup without a fiber, for the stores that can answer one
 * synchronously (the memory store).
 *
 * Running an Effect costs a fiber per call, which is most of the price of a
 * lookup that is itself a hash and a `Map` read. Code outside Effect (the
 * Promise registry, the `node:http` and Web-standard guards) asks the built
 * service for this path and calls it directly; a store with no such path (a
 * lookup over the network) has none, and they fall back to `resolve`.
 */
import type { CredentialScope, InvalidCredential } from "../Credential.ts"

/**
 * The memory store's lookup and call tracking as plain functions.
 */
export interface SyncLookup {
  /**
   * `resolve` as a plain call: the credential's scope, or the
   * `InvalidCredential` that `resolve` would fail with, as a value. A success
   * is a use, and a credential reclaimed by the lookup has its hooks started
   * once, exactly as through `resolve`.
   */
  readonly lookup: (token: string) => CredentialScope | InvalidCredential
  /** `beginCall` as a plain call: the returned function ends the call. */
  readonly beginCall: (credentialId: string) => () => void
  /**
   * `lookup`, then `beginCall` on the credential it found, in one step: what
   * a guard does per request, without finding the credential twice.
   */
  readonly lookupCall: (token: string) => LookupCall | InvalidCredential
  /**
   * Whether `lookup` would succeed now, as a pure read: no use, no count, no
   * log line. The guards ask it before they read a request's body, so a
   * token that is not live never makes the server hold one.
   */
  readonly isLive: (token: string) => boolean
}

/**
 * A successful `lookupCall`: the caller's scope, and the end of its call
 * (synchronous, idempotent; a no-op under `slideOnUse: false`).
 */
export interface LookupCall {
  readonly scope: CredentialScope
  readonly end: () => void
}

// Keyed by the service object, so the public service shape stays the same for
// every store and a service from anywhere else simply has no entry.
const lookups = new WeakMap<object, SyncLookup>()

/**
 * Records the synchronous path of a service that `make` just built.
 */
export const attach = (service: object, lookup: SyncLookup): void => {
  lookups.set(service, lookup)
}

/**
 * The synchronous path of a built registry service, or `undefined` when its
 * store has none (Redis) or the service was not built by this library.
 */
export const syncLookup = (service: object): SyncLookup | undefined => lookups.get(service)

// The same check, by the registry objects the guards are given (a Promise
// registry, or `fromService`'s answer), which are not the service itself.
const liveChecks = new WeakMap<object, (token: string) => boolean>()

/**
 * Records that `registry` (an object the guards may be given) answers
 * `isLive` synchronously.
 */
export const attachLiveCheck = (registry: object, isLive: (token: string) => boolean): void => {
  liveChecks.set(registry, isLive)
}

/**
 * The synchronous `isLive` of a registry object the guards were given, or
 * `undefined` when its store has none (Redis: a second round trip per
 * request would cost more than the body it spares) or it was built
 * elsewhere.
 */
export const liveCheck = (registry: object): ((token: string) => boolean) | undefined =>
  liveChecks.get(registry)
