/**
 * The caller as the official MCP SDK carries it: its `AuthInfo`, which the
 * SDK's transports hand to tool handlers as `extra.authInfo`. Built here
 * without importing the SDK, so the node and Web guards work in hosts that
 * do not use it.
 *
 * @since 0.1.0
 */
import type { CredentialScope } from "../Credential.ts"

/**
 * The SDK's `AuthInfo` (`@modelcontextprotocol/sdk/server/auth/types.js`),
 * field for field.
 *
 * @since 0.1.0
 */
export interface AuthInfo {
  token: string
  clientId: string
  scopes: Array<string>
  expiresAt?: number
  resource?: URL
  extra?: Record<string, unknown>
}

/**
 * What `AuthInfo.extra` holds for a credential of this registry.
 *
 * @since 0.1.0
 */
export interface AuthInfoExtra {
  readonly credentialId: string
  readonly threadId: string
  readonly providerSessionId: string
  readonly providerInstanceId: string
  /** Epoch milliseconds: when the credential dies unless used again. */
  readonly idleExpiresAt: number
}

// The token lives in a private field behind a getter on the prototype, so
// it is no own property: `JSON.stringify`, `Object.keys`, spreading and
// `util.inspect` leave it out, and no per-object property definition is paid
// for (that was most of this function's cost on every request).
class CallerAuthInfo implements AuthInfo {
  readonly #token: string
  clientId: string
  scopes: Array<string>
  expiresAt: number
  extra: Record<string, unknown>
  declare resource?: URL
  constructor(scope: CredentialScope, token: string) {
    this.#token = token
    this.clientId = scope.providerInstanceId
    // A copy, as the SDK's type is mutable; most credentials have none, and
    // a literal costs a fraction of `slice`'s builtin call.
    this.scopes = scope.capabilities.length === 0 ? [] : scope.capabilities.slice()
    this.expiresAt = Math.floor(scope.expiresAt / 1000)
    const extra: AuthInfoExtra = {
      credentialId: scope.credentialId,
      threadId: scope.threadId,
      providerSessionId: scope.providerSessionId,
      providerInstanceId: scope.providerInstanceId,
      idleExpiresAt: scope.idleExpiresAt
    }
    this.extra = extra as unknown as Record<string, unknown>
  }
  get token(): string {
    return this.#token
  }
}

/**
 * Maps a resolved credential to the SDK's `AuthInfo`.
 *
 * `clientId` is the provider instance, `scopes` are the capabilities, and
 * `expiresAt` is the credential's (sliding) expiry in epoch seconds, rounded
 * down. The SDK requires the `token` field; it is readable but no own
 * property, so logging or serializing the `AuthInfo` does not print it.
 *
 * @since 0.1.0
 */
export const toAuthInfo = (scope: CredentialScope, token: string, resource?: URL | undefined): AuthInfo => {
  const info = new CallerAuthInfo(scope, token)
  if (resource !== undefined) info.resource = resource
  return info
}

/**
 * Who is calling, from an `AuthInfo` (a tool handler's `extra.authInfo`, or
 * `req.auth` behind the node guard); `undefined` when the request was not
 * authenticated by this library.
 *
 * @since 0.1.0
 */
export const caller = (authInfo: { readonly extra?: Record<string, unknown> | undefined } | undefined): AuthInfoExtra | undefined => {
  const extra = authInfo?.extra
  return extra !== undefined && typeof extra["credentialId"] === "string" && typeof extra["threadId"] === "string"
    ? extra as unknown as AuthInfoExtra
    : undefined
}
