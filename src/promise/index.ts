/**
 * mcp-session-registry for hosts without Effect: the registry behind
 * Promise-returning methods.
 *
 * ```ts
 * import { createRegistry, reveal } from "mcp-session-registry/promise"
 *
 * const registry = await createRegistry()
 * const credential = await registry.issue({ threadId: "t1", providerInstanceId: "claude-code" })
 * spawn("claude", [], { env: { ...process.env, MCP_SESSION_TOKEN: reveal(credential.token) } })
 * ```
 *
 * @since 0.1.0
 */
import * as Redacted from "effect/Redacted"

export {
  /**
   * A credential without its token.
   *
   * @since 0.1.0
   */
  type CredentialInfo,
  /**
   * What `resolve` answers for a live token.
   *
   * @since 0.1.0
   */
  type CredentialScope,
  /**
   * Why a presented token was refused.
   *
   * @since 0.1.0
   */
  InvalidCredential,
  /**
   * The refusal reasons of `InvalidCredential`.
   *
   * @since 0.1.0
   */
  type InvalidReason,
  /**
   * What `issue` returns: the only value holding the token.
   *
   * @since 0.1.0
   */
  type IssuedCredential
} from "../Credential.ts"
export {
  /**
   * `issue` was given a request it cannot honour.
   *
   * @since 0.1.0
   */
  InvalidIssueRequest,
  /**
   * What `issue` takes.
   *
   * @since 0.1.0
   */
  type IssueRequest,
  /**
   * `issue` would exceed a cap.
   *
   * @since 0.1.0
   */
  RegistryFull,
  /**
   * The credential store could not answer (a remote store only).
   *
   * @since 0.1.0
   */
  StoreUnavailable
} from "../McpSessionRegistry.ts"
export {
  /**
   * An option makes no sense: `createRegistry` rejects with it.
   *
   * @since 0.1.0
   */
  RegistryConfigError
} from "../RegistryConfig.ts"
export {
  /**
   * One credential leaving the registry, as hooks receive it.
   *
   * @since 0.1.0
   */
  type RevocationEvent,
  /**
   * Why a credential left the registry.
   *
   * @since 0.1.0
   */
  type RevocationReason
} from "../Revocation.ts"
export {
  /**
   * A revocation hook: a plain, async or Effect-returning function.
   *
   * @since 0.1.0
   */
  type Hook,
  /**
   * What `createRegistry` accepts.
   *
   * @since 0.1.0
   */
  type Options,
  /**
   * Where credentials live.
   *
   * @since 0.1.0
   */
  type StoreOption
} from "./options.ts"
export {
  /**
   * The part of a node-redis client the Redis store uses.
   *
   * @since 0.1.0
   */
  type RedisClient,
  /**
   * The Redis store and its options.
   *
   * @since 0.1.0
   */
  type RedisStore
} from "./redisStore.ts"
export {
  /**
   * Builds a registry.
   *
   * @since 0.1.0
   */
  createRegistry,
  /**
   * What `lookup` answers.
   *
   * @since 0.1.0
   */
  type Lookup,
  /**
   * What `lookupCall` answers for a live token.
   *
   * @since 0.1.0
   */
  type LookupCall,
  /**
   * The registry's Promise methods.
   *
   * @since 0.1.0
   */
  type Registry,
  /**
   * A call reached a closed registry.
   *
   * @since 0.1.0
   */
  RegistryClosed
} from "./Registry.ts"

/**
 * The raw token of a credential (or its `authorizationHeader`), to put into
 * the one environment variable that hands it to a child process. Anywhere
 * else, keep it wrapped: a `Redacted` value prints as `<redacted>`.
 *
 * @since 0.1.0
 */
export const reveal = (secret: Redacted.Redacted<string>): string => Redacted.value(secret)
