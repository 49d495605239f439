/**
 * A registry filled with live credentials, the way a busy host fills it.
 *
 * Credentials are spread over threads of four provider instances each (one
 * Claude Code, Codex, Gemini CLI and OpenCode session per thread), so no issue
 * replaces another and every thread stays far below its cap.
 */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as McpSessionRegistry from "../src/McpSessionRegistry.ts"
import type * as RegistryConfig from "../src/RegistryConfig.ts"

/** The provider instances a thread's credentials are issued to. */
export const providers = ["claude-code", "codex", "gemini-cli", "opencode"] as const

/** The thread of the `i`-th credential of a population. */
export const threadOf = (i: number): string => `thread-${i >> 2}`

/** Options that let a registry hold `size` live credentials and more. */
export const optionsFor = (size: number, extra: RegistryConfig.Options = {}): RegistryConfig.Options => ({
  maxCredentials: Math.max(size * 2, 1000),
  maxCredentialsPerThread: 1000,
  ...extra
})

/** Issues `size` credentials and returns their tokens, in issue order. */
export const populate = Effect.fnUntraced(function*(
  registry: McpSessionRegistry.McpSessionRegistry["Service"],
  size: number,
  keepTokens = true,
  thread: (i: number) => string = threadOf
) {
  const tokens: Array<string> = keepTokens ? new Array(size) : []
  for (let i = 0; i < size; i++) {
    const credential = yield* registry.issue({ threadId: thread(i), providerInstanceId: providers[i & 3]! })
    if (keepTokens) tokens[i] = Redacted.value(credential.token)
  }
  return tokens
})
