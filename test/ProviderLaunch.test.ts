import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import * as fc from "fast-check"
import type { Credential } from "../src/index.ts"
import { McpSessionRegistry, ProviderLaunch } from "../src/index.ts"

const endpoint = "http://127.0.0.1:4000/mcp"

const issue = (threadId = "thread-1") =>
  Effect.gen(function*() {
    const registry = yield* McpSessionRegistry.McpSessionRegistry
    return yield* registry.issue({ threadId, providerInstanceId: "agent" })
  })

const occurrences = (haystack: string, needle: string): number => haystack.split(needle).length - 1

// The core invariant: the token is in env exactly once, and in neither args nor config.
const assertTokenOnlyInEnv = (launch: ProviderLaunch.LaunchConfig, credential: Credential.IssuedCredential) => {
  const token = Redacted.value(credential.token)
  assert.strictEqual(occurrences(JSON.stringify(Object.values(launch.env)), token), 1)
  assert.strictEqual(occurrences(JSON.stringify(Object.keys(launch.env)), token), 0)
  assert.strictEqual(occurrences(JSON.stringify(launch.args), token), 0)
  assert.strictEqual(occurrences(JSON.stringify(launch.config ?? null), token), 0)
}

const cli = {
  claudeCode: ProviderLaunch.claudeCode,
  codex: ProviderLaunch.codex,
  geminiCli: ProviderLaunch.geminiCli,
  openCode: ProviderLaunch.openCode,
  generic: ProviderLaunch.generic
} as const

describe("ProviderLaunch", () => {
  it.layer(McpSessionRegistry.layer())((it) => {
    it.effect("Claude Code: an http mcpServers entry with Bearer ${VAR}, passed as --mcp-config=<json>", () =>
      Effect.gen(function*() {
        const credential = yield* issue()
        const launch = yield* ProviderLaunch.claudeCode({ credential, serverName: "host", endpoint })
        const config = {
          mcpServers: {
            host: {
              type: "http",
              url: endpoint,
              headers: { Authorization: "Bearer ${MCP_SESSION_TOKEN}" }
            }
          }
        }
        assert.deepStrictEqual(launch.config, config)
        assert.deepStrictEqual(launch.args, [`--mcp-config=${JSON.stringify(config)}`])
        assert.deepStrictEqual(launch.env, { MCP_SESSION_TOKEN: Redacted.value(credential.token) })
        assertTokenOnlyInEnv(launch, credential)
      }))

    it.effect("Codex: -c mcp_servers.<name>.url and bearer_token_env_var", () =>
      Effect.gen(function*() {
        const credential = yield* issue()
        const launch = yield* ProviderLaunch.codex({ credential, serverName: "host", endpoint, envVar: "HOST_TOKEN" })
        assert.deepStrictEqual(launch.args, [
          "-c",
          `mcp_servers.host.url="http://127.0.0.1:4000/mcp"`,
          "-c",
          `mcp_servers.host.bearer_token_env_var="HOST_TOKEN"`,
          // Codex would otherwise write its environment, token included, to a shell snapshot file.
          "-c",
          "features.shell_snapshot=false"
        ])
        assert.deepStrictEqual(launch.config, {
          mcp_servers: { host: { url: endpoint, bearer_token_env_var: "HOST_TOKEN" } },
          features: { shell_snapshot: false }
        })
        assert.deepStrictEqual(launch.env, { HOST_TOKEN: Redacted.value(credential.token) })
        assertTokenOnlyInEnv(launch, credential)
      }))

    it.effect("Gemini CLI: mcpServers.<name> with httpUrl, Bearer $VAR and OAuth off, no args", () =>
      Effect.gen(function*() {
        const credential = yield* issue()
        const launch = yield* ProviderLaunch.geminiCli({ credential, serverName: "host", endpoint })
        assert.deepStrictEqual(launch.config, {
          mcpServers: {
            host: { httpUrl: endpoint, headers: { Authorization: "Bearer $MCP_SESSION_TOKEN" }, oauth: { enabled: false } }
          }
        })
        assert.deepStrictEqual(launch.args, [])
        assert.deepStrictEqual(launch.env, { MCP_SESSION_TOKEN: Redacted.value(credential.token) })
        assertTokenOnlyInEnv(launch, credential)
      }))

    it.effect("OpenCode: mcp.<name> of type remote with Bearer {env:VAR} and oauth: false, no args", () =>
      Effect.gen(function*() {
        const credential = yield* issue()
        const launch = yield* ProviderLaunch.openCode({ credential, serverName: "host", endpoint })
        assert.deepStrictEqual(launch.config, {
          mcp: {
            host: {
              type: "remote",
              url: endpoint,
              enabled: true,
              headers: { Authorization: "Bearer {env:MCP_SESSION_TOKEN}" },
              // A 401 must not send OpenCode into OAuth discovery and client registration.
              oauth: false
            }
          }
        })
        assert.deepStrictEqual(launch.args, [])
        assert.deepStrictEqual(launch.env, { MCP_SESSION_TOKEN: Redacted.value(credential.token) })
        assertTokenOnlyInEnv(launch, credential)
      }))

    it.effect("generic: the endpoint and the Authorization header value in documented variables", () =>
      Effect.gen(function*() {
        const credential = yield* issue()
        const launch = yield* ProviderLaunch.generic({ credential, serverName: "host", endpoint })
        assert.deepStrictEqual(launch.env, {
          MCP_SESSION_URL: endpoint,
          MCP_SESSION_AUTHORIZATION: Redacted.value(credential.authorizationHeader)
        })
        assert.deepStrictEqual(launch.args, [])
        assert.deepStrictEqual(launch.config, {
          serverName: "host",
          urlEnvVar: "MCP_SESSION_URL",
          authorizationEnvVar: "MCP_SESSION_AUTHORIZATION"
        })
        assertTokenOnlyInEnv(launch, credential)

        const renamed = yield* ProviderLaunch.generic({
          credential,
          serverName: "host",
          endpoint,
          envVar: "B_AUTH",
          urlEnvVar: "B_URL"
        })
        assert.deepStrictEqual(Object.keys(renamed.env).sort(), ["B_AUTH", "B_URL"])
        const clash = yield* Effect.flip(
          ProviderLaunch.generic({ credential, serverName: "host", endpoint, envVar: "SAME", urlEnvVar: "SAME" })
        )
        assert.strictEqual(clash.field, "urlEnvVar")
      }))

    it.effect("the default variable names are stable", () =>
      Effect.sync(() => {
        assert.strictEqual(ProviderLaunch.defaultEnvVar, "MCP_SESSION_TOKEN")
        assert.strictEqual(ProviderLaunch.defaultAuthorizationEnvVar, "MCP_SESSION_AUTHORIZATION")
        assert.strictEqual(ProviderLaunch.defaultUrlEnvVar, "MCP_SESSION_URL")
      }))

    it.effect("two credentials launched side by side use different variables and never mix tokens", () =>
      Effect.gen(function*() {
        const a = yield* issue("thread-a")
        const b = yield* issue("thread-b")
        for (const make of Object.values(cli)) {
          const launchA = yield* make({ credential: a, serverName: "a", endpoint, envVar: "A_TOKEN" })
          const launchB = yield* make({ credential: b, serverName: "b", endpoint, envVar: "B_TOKEN" })
          // One child may hold both: merged, each token keeps its own variable.
          const env = { ...launchA.env, ...launchB.env }
          assert.include(env["A_TOKEN"], Redacted.value(a.token))
          assert.include(env["B_TOKEN"], Redacted.value(b.token))
          assert.notInclude(JSON.stringify(launchA), Redacted.value(b.token))
          assert.notInclude(JSON.stringify(launchB), Redacted.value(a.token))
          assert.notInclude(JSON.stringify([launchA.args, launchA.config]), "B_TOKEN")
        }
      }))

    it.effect("rejects server names a CLI would refuse or that could inject into its config syntax", () =>
      Effect.gen(function*() {
        const credential = yield* issue()
        const bad = ["", "a.b", "a b", "a\"b", "a'b", "a\nb", "a]b", "a=b", "-flag", "x".repeat(65), "é", 42, undefined]
        for (const make of Object.values(cli)) {
          for (const serverName of bad) {
            const error = yield* Effect.flip(make({ credential, serverName: serverName as string, endpoint }))
            assert.strictEqual(error._tag, "InvalidLaunchInput")
            assert.strictEqual(error.field, "serverName")
            assert.notInclude(error.message, Redacted.value(credential.token))
          }
          for (const serverName of ["a", "my-host_2", "_x", "x".repeat(64)]) {
            yield* make({ credential, serverName, endpoint })
          }
        }
      }))

    it.effect("rejects variable names that are not portable environment names", () =>
      Effect.gen(function*() {
        const credential = yield* issue()
        const bad = ["", "1ABC", "A-B", "A.B", "A B", "A}", "A:B", "$A", "{env:A}", "A\n", "A".repeat(129)]
        for (const make of Object.values(cli)) {
          for (const envVar of bad) {
            const error = yield* Effect.flip(make({ credential, serverName: "host", endpoint, envVar }))
            assert.strictEqual(error.field, "envVar")
          }
        }
        const error = yield* Effect.flip(
          ProviderLaunch.generic({ credential, serverName: "host", endpoint, urlEnvVar: "A-B" })
        )
        assert.strictEqual(error.field, "urlEnvVar")
      }))

    it.effect("rejects endpoints that are not plain http(s) URLs and serializes the rest safely", () =>
      Effect.gen(function*() {
        const credential = yield* issue()
        const bad = ["", "/mcp", "ftp://h/mcp", "javascript:alert(1)", "http://u:p@h/mcp", "http://h/\nmcp", "http://h/ mcp"]
        for (const make of Object.values(cli)) {
          for (const badEndpoint of bad) {
            const error = yield* Effect.flip(make({ credential, serverName: "host", endpoint: badEndpoint }))
            assert.strictEqual(error.field, "endpoint")
          }
        }
        // Quotes and backslashes cannot break out of the TOML string Codex parses.
        const launch = yield* ProviderLaunch.codex({ credential, serverName: "h", endpoint: `http://h/a"b\\c` })
        assert.strictEqual(launch.args[1], `mcp_servers.h.url="http://h/a%22b/c"`)
      }))

    it.effect("rejects a credential without a Redacted token", () =>
      Effect.gen(function*() {
        const credential = yield* issue()
        const leaky = { ...credential, token: Redacted.value(credential.token) } as unknown as Credential.IssuedCredential
        const error = yield* Effect.flip(ProviderLaunch.claudeCode({ credential: leaky, serverName: "host", endpoint }))
        assert.strictEqual(error.field, "credential")
        assert.notInclude(error.message, Redacted.value(credential.token))
      }))

    it.effect("for any input, either a typed error or the token only in env", () =>
      Effect.gen(function*() {
        const credential = yield* issue()
        const name = fc.oneof(fc.string({ maxLength: 70 }), fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/))
        const variable = fc.oneof(fc.string({ maxLength: 20 }), fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,20}$/))
        const url = fc.oneof(fc.webUrl(), fc.string(), fc.constant(endpoint))
        fc.assert(
          fc.property(fc.constantFrom(...Object.values(cli)), name, variable, url, (make, serverName, envVar, ep) => {
            const result = Effect.runSync(Effect.result(make({ credential, serverName, endpoint: ep, envVar })))
            if (result._tag === "Failure") {
              assert.strictEqual(result.failure._tag, "InvalidLaunchInput")
              return
            }
            assertTokenOnlyInEnv(result.success, credential)
          }),
          { numRuns: 200 }
        )
      }))
  })
})
