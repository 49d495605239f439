/**
 * mcp-session-registry's guards for servers outside Effect: `nodeGuard`
 * (`node:http`, Express, Connect) and `webGuard` (Hono, Bun, Deno, route
 * handlers), over the Promise registry or, through `fromService`, an Effect
 * one. They share their rules with `McpBearerAuth`.
 *
 * ```ts
 * import { createRegistry } from "mcp-session-registry/promise"
 * import { nodeGuard } from "mcp-session-registry/guard"
 *
 * const registry = await createRegistry()
 * app.use("/mcp", nodeGuard(registry))
 * ```
 *
 * @since 0.1.0
 */
export {
  /**
   * The SDK's `AuthInfo`, field for field.
   *
   * @since 0.1.0
   */
  type AuthInfo,
  /**
   * What `AuthInfo.extra` holds for a credential of this registry.
   *
   * @since 0.1.0
   */
  type AuthInfoExtra,
  /**
   * Who is calling, from an `AuthInfo` (`req.auth`, `extra.authInfo`).
   *
   * @since 0.1.0
   */
  caller,
  /**
   * A credential's `AuthInfo`.
   *
   * @since 0.1.0
   */
  toAuthInfo
} from "./authInfo.ts"
export {
  /**
   * The node middleware's request, with its caller on `auth`.
   *
   * @since 0.1.0
   */
  type GuardedRequest,
  /**
   * `(req, res, next)`.
   *
   * @since 0.1.0
   */
  type Middleware,
  /**
   * The node guard.
   *
   * @since 0.1.0
   */
  nodeGuard,
  /**
   * What the node guard can be told.
   *
   * @since 0.1.0
   */
  type Options as NodeGuardOptions
} from "./node.ts"
export {
  /**
   * What a `lookupCall` answers.
   *
   * @since 0.1.0
   */
  type CallLookup,
  /**
   * A `GuardRegistry` over a built Effect registry service.
   *
   * @since 0.1.0
   */
  fromService,
  /**
   * What the guards need of a registry.
   *
   * @since 0.1.0
   */
  type GuardRegistry,
  /**
   * What a lookup answers.
   *
   * @since 0.1.0
   */
  type Lookup
} from "./registry.ts"
export {
  /**
   * A guard option that cannot work.
   *
   * @since 0.1.0
   */
  GuardConfigError,
  /**
   * The body of every refusal.
   *
   * @since 0.1.0
   */
  type JsonRpcErrorBody,
  /**
   * The JSON-RPC error codes of refusals.
   *
   * @since 0.1.0
   */
  jsonRpcErrorCodes,
  /**
   * The options every guard shares.
   *
   * @since 0.1.0
   */
  type Options,
  /**
   * A refusal as plain data.
   *
   * @since 0.1.0
   */
  type Refusal,
  /**
   * Why a guard refused a request.
   *
   * @since 0.1.0
   */
  type RejectionKind
} from "./rules.ts"
export {
  /**
   * An authenticated Web request's caller.
   *
   * @since 0.1.0
   */
  type Caller,
  /**
   * The Node request behind a Web one (`@hono/node-server`'s `c.env`).
   *
   * @since 0.1.0
   */
  type NodeBindings,
  /**
   * The built Web guard.
   *
   * @since 0.1.0
   */
  type WebGuard,
  /**
   * The Web guard.
   *
   * @since 0.1.0
   */
  webGuard,
  /**
   * What the Web guard can be told.
   *
   * @since 0.1.0
   */
  type Options as WebGuardOptions
} from "./web.ts"
