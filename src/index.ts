/**
 * mcp-session-registry: per-session MCP bearer credentials for coding-agent hosts.
 *
 * @since 0.1.0
 */

/**
 * The bearer token format: minting, recognising and digesting tokens.
 *
 * @since 0.1.0
 */
export * as BearerToken from "./BearerToken.ts"

/**
 * Credential values and the `InvalidCredential` error.
 *
 * @since 0.1.0
 */
export * as Credential from "./Credential.ts"

/**
 * The bearer-token guard for Effect's HTTP server and its `CurrentCredential`.
 *
 * @since 0.1.0
 */
export * as McpBearerAuth from "./McpBearerAuth.ts"

/**
 * The embedded MCP server over Streamable HTTP, guarded by the registry.
 *
 * @since 0.1.0
 */
export * as McpHttpServer from "./McpHttpServer.ts"

/**
 * The registry service and its layers.
 *
 * @since 0.1.0
 */
export * as McpSessionRegistry from "./McpSessionRegistry.ts"

/**
 * Registry options, defaults and environment configuration.
 *
 * @since 0.1.0
 */
export * as RegistryConfig from "./RegistryConfig.ts"

/**
 * Revocation events and hooks.
 *
 * @since 0.1.0
 */
export * as Revocation from "./Revocation.ts"

/**
 * Launch configurations that inject a credential into Claude Code, Codex,
 * Gemini CLI, OpenCode or any child process.
 *
 * @since 0.1.0
 */
export * as ProviderLaunch from "./ProviderLaunch.ts"
