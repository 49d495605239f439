/**
 * Revocation events and the hooks that observe them.
 *
 * Every credential that leaves the registry produces exactly one
 * `RevocationEvent`, whatever the way out, and every hook live at that moment
 * sees it once. Hosts use hooks to close the MCP transport, kill the agent
 * process or record an audit line when a session's credential goes away.
 *
 * @since 0.1.0
 */
import type * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type { CredentialInfo } from "./Credential.ts"

/**
 * Why a credential left the registry.
 *
 * - `revoked`: `revoke` or `revokeAll`.
 * - `session-stopped`: its provider session or thread stopped
 *   (`revokeProviderSession`, `revokeThread`, or the scope of `issueScoped` closed).
 * - `replaced`: a new credential was issued for the same thread and provider instance.
 * - `idle`: unused for longer than the idle timeout.
 * - `expired`: past its lifetime or absolute cap.
 * - `shutdown`: the registry layer closed.
 *
 * @since 0.1.0
 */
export const RevocationReason = Schema.Literals(["revoked", "session-stopped", "replaced", "idle", "expired", "shutdown"])

/**
 * @since 0.1.0
 */
export type RevocationReason = typeof RevocationReason.Type

/**
 * One credential leaving the registry.
 *
 * @since 0.1.0
 */
export interface RevocationEvent {
  readonly credential: CredentialInfo
  readonly reason: RevocationReason
}

/**
 * Runs once for every credential that leaves the registry while the hook is
 * registered. A hook that fails, dies or outlives the registry's hook timeout
 * is logged and abandoned; it never holds up revocation or other hooks.
 *
 * @since 0.1.0
 */
export type RevocationHook = (event: RevocationEvent) => Effect.Effect<void, unknown>
