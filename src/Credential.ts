/**
 * What a credential is, as the registry hands it out and reports it.
 *
 * `IssuedCredential` is what `issue` returns: the only value that holds the
 * token, always `Redacted`. `CredentialScope` is what an authenticated request
 * learns from `resolve`. `CredentialInfo` is the token-free view used by `list`
 * and revocation events. `InvalidCredential` says why a presented token was
 * refused.
 *
 * @since 0.1.0
 */
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"

/**
 * A credential without its token: safe to log, list and hand to hooks.
 *
 * Times are epoch milliseconds from the registry's `Clock`.
 *
 * @since 0.1.0
 */
export interface CredentialInfo {
  readonly credentialId: string
  /** Fresh for every issue: names the provider session the credential was minted for. */
  readonly providerSessionId: string
  readonly threadId: string
  readonly providerInstanceId: string
  readonly capabilities: ReadonlyArray<string>
  readonly issuedAt: number
  /** The last use: a `resolve` (unless `slideOnUse` is `false`), a `touch`, or the end of a call in flight. */
  readonly lastUsedAt: number
  /** When the credential dies unless used again: slides forward on every use. */
  readonly expiresAt: number
  /**
   * When the credential dies if left unused: now plus the idle time it has
   * left (awake time under `idleClock: "awake"`, so it moves later across a
   * sleep), never past `expiresAt`; equal to `expiresAt` while a call is in flight.
   */
  readonly idleExpiresAt: number
}

/**
 * What `resolve` returns for a live token: who is calling, with `expiresAt`
 * and `lastUsedAt` as this use left them.
 *
 * @since 0.1.0
 */
export interface CredentialScope extends CredentialInfo {}

/**
 * A freshly minted credential. The token exists only here and in the caller's
 * hands; pass it to the child process through an environment variable.
 *
 * @since 0.1.0
 */
export interface IssuedCredential {
  readonly credentialId: string
  readonly providerSessionId: string
  readonly threadId: string
  readonly providerInstanceId: string
  readonly capabilities: ReadonlyArray<string>
  readonly token: Redacted.Redacted<string>
  /** `Bearer <token>`, ready for an `Authorization` header. */
  readonly authorizationHeader: Redacted.Redacted<string>
  readonly issuedAt: number
  readonly expiresAt: number
}

/**
 * Why a presented token was refused.
 *
 * - `missing`: no token at all.
 * - `malformed`: not a token of this format (length, prefix or checksum;
 *   `BearerToken.check` also tests the alphabet).
 * - `unknown`: well formed, but the registry has no record of it.
 * - `revoked`: it was revoked, replaced, stopped with its session or shut down.
 * - `idle`: unused for longer than the idle timeout.
 * - `expired`: past its lifetime or absolute cap.
 *
 * `revoked`, `idle` and `expired` are remembered for a bounded while after the
 * credential left (by digest only), then read `unknown`.
 *
 * @since 0.1.0
 */
export const InvalidReason = Schema.Literals(["missing", "malformed", "unknown", "revoked", "idle", "expired"])

/**
 * @since 0.1.0
 */
export type InvalidReason = typeof InvalidReason.Type

/**
 * One sentence per reason, for an `error_description` or a log line. Never
 * mentions the token.
 *
 * @since 0.1.0
 */
export const descriptions: Readonly<Record<InvalidReason, string>> = {
  missing: "no bearer token was presented",
  malformed: "the bearer token is malformed",
  unknown: "the bearer token is not known to this server",
  revoked: "the bearer token was revoked",
  idle: "the bearer token expired after being idle too long",
  expired: "the bearer token has expired"
}

/**
 * A presented token was refused. Never carries the token itself.
 *
 * @since 0.1.0
 */
export class InvalidCredential extends Schema.TaggedError<InvalidCredential>()("InvalidCredential", {
  reason: InvalidReason
}) {
  /**
   * A sentence for an `error_description` or a log line.
   *
   * @since 0.1.0
   */
  get description(): string {
    return descriptions[this.reason]
  }

  override get message(): string {
    return `Invalid credential (${this.reason}): ${descriptions[this.reason]}`
  }
}
