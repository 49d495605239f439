/**
 * Launch configurations: what a host adds to an agent CLI's process so that
 * the CLI calls the host's MCP server with a freshly issued credential.
 *
 * Each function turns an `IssuedCredential` into a `LaunchConfig` for one CLI
 * (Claude Code, Codex, Gemini CLI, OpenCode) or for any other child process
 * (`generic`). The token is put in exactly one environment variable and
 * nowhere else: argv is visible to every user through `ps`, and a config may
 * be written to disk, so both only name the variable, in the syntax the CLI
 * expands. Server and variable names are validated, so no caller-supplied
 * string can break out of a CLI's config syntax.
 *
 * Every form here was checked against the real CLIs (see
 * `scripts/check-clis.ts`):
 *
 * - Claude Code expands `${VAR}` in `headers` of an `http` server, both in
 *   `--mcp-config` and in `claude mcp add-json`.
 * - Codex reads the token from the variable named by `bearer_token_env_var`
 *   (and, unless told not to, writes its whole environment to a shell
 *   snapshot file, so the launch config turns that off).
 * - Gemini CLI expands `$VAR` in `settings.json` values, `headers` included.
 * - OpenCode substitutes `{env:VAR}` anywhere in its config.
 *
 * A refused token must reach the agent as the refusal it is, not start an
 * OAuth flow: OpenCode's entry sets `oauth: false` (else a 401 sends it
 * probing for OAuth metadata and registering a client), Gemini CLI's sets
 * `oauth.enabled: false` (its default, made explicit). Claude Code and Codex
 * have no such switch: Claude Code starts no OAuth flow for a server whose
 * `Authorization` header is configured, and Codex only through
 * `codex mcp login`.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type { IssuedCredential } from "./Credential.ts"

/**
 * What to add to a child process: environment variables, command-line
 * arguments and, where the CLI reads one, a config object to write or pass.
 *
 * The token is in `env` only, exactly once.
 *
 * @since 0.1.0
 */
export interface LaunchConfig {
  /** Variables to add to the child's environment; the only place holding the token. */
  readonly env: Readonly<Record<string, string>>
  /** Arguments to add to the child's command line; never hold the token. */
  readonly args: ReadonlyArray<string>
  /** A config object to write or pass as the CLI expects; references the variable, never holds the token. */
  readonly config?: unknown
}

/**
 * What every launch function needs.
 *
 * @since 0.1.0
 */
export interface LaunchInput {
  /** The credential to inject, as returned by `issue`. */
  readonly credential: IssuedCredential
  /** The name the CLI knows the MCP server by: letters, digits, `_` and `-`, at most 64, not starting with `-`. */
  readonly serverName: string
  /** The MCP endpoint, an `http:` or `https:` URL without user info, e.g. `http://127.0.0.1:4000/mcp`. */
  readonly endpoint: string
  /** The variable that carries the token; `defaultEnvVar` when omitted. Use distinct names to launch two credentials side by side. */
  readonly envVar?: string | undefined
}

/**
 * What `generic` needs: the variables carry the authorization header and the
 * endpoint.
 *
 * @since 0.1.0
 */
export interface GenericLaunchInput extends LaunchInput {
  /** The variable that carries the endpoint; `defaultUrlEnvVar` when omitted. */
  readonly urlEnvVar?: string | undefined
}

/**
 * The variable that carries the raw token for Claude Code, Codex, Gemini CLI
 * and OpenCode when `envVar` is not given.
 *
 * @since 0.1.0
 */
export const defaultEnvVar = "MCP_SESSION_TOKEN"

/**
 * The variable that carries the whole `Authorization` header value
 * (`Bearer <token>`) for `generic` when `envVar` is not given.
 *
 * @since 0.1.0
 */
export const defaultAuthorizationEnvVar = "MCP_SESSION_AUTHORIZATION"

/**
 * The variable that carries the endpoint for `generic` when `urlEnvVar` is not
 * given.
 *
 * @since 0.1.0
 */
export const defaultUrlEnvVar = "MCP_SESSION_URL"

/**
 * A launch input that no CLI could use safely: a server name, variable name or
 * endpoint that the CLI would reject or that could inject into its config
 * syntax. Never carries the token.
 *
 * @since 0.1.0
 */
export class InvalidLaunchInput extends Schema.TaggedError<InvalidLaunchInput>()("InvalidLaunchInput", {
  /** `serverName`, `envVar`, `urlEnvVar`, `endpoint` or `credential`. */
  field: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `Invalid launch input: ${this.field} ${this.detail}`
  }
}

// The intersection of what the CLIs accept: Claude Code allows letters,
// digits, `-` and `_`; Codex's `-c mcp_servers.<name>.url` splits on dots. A
// leading `-` would read as an option in `claude mcp add-json <name>`, and
// Claude Code tool names (`mcp__<server>__<tool>`) are capped at 64.
const serverNamePattern = /^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$/

// A POSIX portable variable name: the only form `$VAR`, `${VAR}` and
// `{env:VAR}` all expand, and none of its characters means anything in JSON
// or TOML.
const envVarPattern = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/

const show = (value: unknown): string => {
  const text = JSON.stringify(typeof value === "string" && value.length > 80 ? value.slice(0, 80) + "..." : value)
  return text === undefined ? String(value) : text
}

const checkServerName = (serverName: unknown): InvalidLaunchInput | undefined =>
  typeof serverName === "string" && serverNamePattern.test(serverName)
    ? undefined
    : new InvalidLaunchInput({
      field: "serverName",
      detail: `must be 1 to 64 letters, digits, "_" or "-", not starting with "-"; got ${show(serverName)}`
    })

const checkEnvVar = (field: string, name: unknown): InvalidLaunchInput | undefined =>
  typeof name === "string" && envVarPattern.test(name)
    ? undefined
    : new InvalidLaunchInput({
      field,
      detail: `must be a variable name of letters, digits and "_", not starting with a digit; got ${show(name)}`
    })

const parseEndpoint = (endpoint: unknown): string | InvalidLaunchInput => {
  const invalid = (detail: string) => new InvalidLaunchInput({ field: "endpoint", detail })
  if (typeof endpoint !== "string") return invalid(`must be a string; got ${show(endpoint)}`)
  // The URL parser silently drops tabs and newlines; refuse them instead.
  if (/[\u0000-\u0020\u007f]/.test(endpoint)) return invalid("must not contain whitespace or control characters")
  let url: URL
  try {
    url = new URL(endpoint)
  } catch {
    return invalid(`must be an absolute URL; got ${show(endpoint)}`)
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return invalid(`must be an http: or https: URL; got ${show(url.protocol)}`)
  }
  // Credentials in the URL would land in argv and config files.
  if (url.username !== "" || url.password !== "") return invalid("must not contain user info")
  // The serialized form percent-encodes quotes and backslashes, so it is safe
  // inside a JSON or TOML string.
  return url.href
}

interface Checked {
  readonly serverName: string
  readonly url: string
  readonly envVar: string
  readonly token: string
}

const check = (input: LaunchInput, fallbackEnvVar: string): Checked | InvalidLaunchInput => {
  if (input === null || typeof input !== "object") {
    return new InvalidLaunchInput({ field: "input", detail: "must be an object" })
  }
  const credential: unknown = input.credential
  if (
    credential === null || typeof credential !== "object" || !Redacted.isRedacted((credential as IssuedCredential).token)
  ) {
    return new InvalidLaunchInput({ field: "credential", detail: "must be an IssuedCredential with a Redacted token" })
  }
  const serverNameError = checkServerName(input.serverName)
  if (serverNameError !== undefined) return serverNameError
  const envVar = input.envVar ?? fallbackEnvVar
  const envVarError = checkEnvVar("envVar", envVar)
  if (envVarError !== undefined) return envVarError
  const url = parseEndpoint(input.endpoint)
  if (typeof url !== "string") return url
  const token = Redacted.value((credential as IssuedCredential).token)
  return { serverName: input.serverName, url, envVar, token }
}

const launch = <I extends LaunchInput>(
  fallbackEnvVar: string,
  build: (checked: Checked, input: I) => LaunchConfig | InvalidLaunchInput
) =>
(input: I): Effect.Effect<LaunchConfig, InvalidLaunchInput> => {
  const checked = check(input, fallbackEnvVar)
  if (checked instanceof InvalidLaunchInput) return Effect.fail(checked)
  const config = build(checked, input)
  return config instanceof InvalidLaunchInput ? Effect.fail(config) : Effect.succeed(config)
}

/**
 * Claude Code: an `mcpServers` entry of type `http` whose `Authorization`
 * header is `Bearer ${VAR}`, which Claude Code expands from its environment.
 *
 * `args` is `--mcp-config=<json>` (the `=` form, because `--mcp-config` takes
 * several values and would swallow the prompt that follows it). `config` is the
 * same JSON, for `claude mcp add-json <serverName> <config.mcpServers[name]>`
 * or a `.mcp.json` file.
 *
 * @since 0.1.0
 */
export const claudeCode: (input: LaunchInput) => Effect.Effect<LaunchConfig, InvalidLaunchInput> = launch(
  defaultEnvVar,
  ({ envVar, serverName, token, url }) => {
    const config = {
      mcpServers: {
        [serverName]: { type: "http", url, headers: { Authorization: `Bearer \${${envVar}}` } }
      }
    }
    return { env: { [envVar]: token }, args: [`--mcp-config=${JSON.stringify(config)}`], config }
  }
)

/**
 * Codex: `-c mcp_servers.<name>.url="..."` and
 * `-c mcp_servers.<name>.bearer_token_env_var="VAR"`; Codex reads the token
 * from that variable and sends it as a bearer token.
 *
 * `args` also has `-c features.shell_snapshot=false`: Codex otherwise writes
 * a snapshot of its environment, token included, to
 * `$CODEX_HOME/shell_snapshots/*.sh`.
 *
 * `config` is the same as a TOML-shaped object, for hosts that write
 * `config.toml` (`[mcp_servers.<name>]` with `url` and `bearer_token_env_var`,
 * and `[features]` with `shell_snapshot = false`).
 *
 * @since 0.1.0
 */
export const codex: (input: LaunchInput) => Effect.Effect<LaunchConfig, InvalidLaunchInput> = launch(
  defaultEnvVar,
  ({ envVar, serverName, token, url }) => ({
    env: { [envVar]: token },
    // A JSON string is a valid TOML basic string for these values: the URL is
    // percent-encoded and the variable name is plain ASCII.
    args: [
      "-c",
      `mcp_servers.${serverName}.url=${JSON.stringify(url)}`,
      "-c",
      `mcp_servers.${serverName}.bearer_token_env_var=${JSON.stringify(envVar)}`,
      "-c",
      "features.shell_snapshot=false"
    ],
    config: { mcp_servers: { [serverName]: { url, bearer_token_env_var: envVar } }, features: { shell_snapshot: false } }
  })
)

/**
 * Gemini CLI: `mcpServers.<name>` with `httpUrl` (Streamable HTTP), an
 * `Authorization` header of `Bearer $VAR`, which Gemini CLI expands when it
 * loads its settings, and `oauth: { enabled: false }`, so a refusal is shown
 * as such and never starts OAuth discovery.
 *
 * Gemini CLI has no flag for MCP servers: merge `config` into
 * `.gemini/settings.json` in the workspace (or a file named by
 * `GEMINI_CLI_SYSTEM_SETTINGS_PATH`). `args` is empty. Gemini CLI only
 * connects MCP servers in a trusted folder.
 *
 * @since 0.1.0
 */
export const geminiCli: (input: LaunchInput) => Effect.Effect<LaunchConfig, InvalidLaunchInput> = launch(
  defaultEnvVar,
  ({ envVar, serverName, token, url }) => ({
    env: { [envVar]: token },
    args: [],
    config: {
      mcpServers: {
        [serverName]: { httpUrl: url, headers: { Authorization: `Bearer $${envVar}` }, oauth: { enabled: false } }
      }
    }
  })
)

/**
 * OpenCode: `mcp.<name>` of type `remote` with an `Authorization` header of
 * `Bearer {env:VAR}`, which OpenCode substitutes when it loads its config,
 * and `oauth: false`: without it, a 401 sends OpenCode probing the server's
 * `/.well-known/` OAuth metadata and registering a client at `/register`,
 * and the agent sees a failed OAuth flow instead of the refusal's reason.
 *
 * OpenCode has no flag for MCP servers: pass `config` as
 * `OPENCODE_CONFIG_CONTENT=<json>` in the child's environment (merged over the
 * user's config) or write it to `opencode.json`. `args` is empty.
 *
 * @since 0.1.0
 */
export const openCode: (input: LaunchInput) => Effect.Effect<LaunchConfig, InvalidLaunchInput> = launch(
  defaultEnvVar,
  ({ envVar, serverName, token, url }) => ({
    env: { [envVar]: token },
    args: [],
    config: {
      mcp: {
        [serverName]: {
          type: "remote",
          url,
          enabled: true,
          headers: { Authorization: `Bearer {env:${envVar}}` },
          oauth: false
        }
      }
    }
  })
)

/**
 * Any other child process: the endpoint in `MCP_SESSION_URL` and the whole
 * `Authorization` header value (`Bearer <token>`) in
 * `MCP_SESSION_AUTHORIZATION`, or in the variables named by `urlEnvVar` and
 * `envVar`. The child sends the header as is.
 *
 * `config` describes the variables (`{ serverName, urlEnvVar,
 * authorizationEnvVar }`); `args` is empty.
 *
 * @since 0.1.0
 */
export const generic: (input: GenericLaunchInput) => Effect.Effect<LaunchConfig, InvalidLaunchInput> = launch(
  defaultAuthorizationEnvVar,
  ({ envVar, serverName, token, url }, input: GenericLaunchInput) => {
    const urlEnvVar = input.urlEnvVar ?? defaultUrlEnvVar
    const urlEnvVarError = checkEnvVar("urlEnvVar", urlEnvVar)
    if (urlEnvVarError !== undefined) return urlEnvVarError
    if (urlEnvVar === envVar) {
      return new InvalidLaunchInput({ field: "urlEnvVar", detail: `must differ from envVar ${show(envVar)}` })
    }
    return {
      env: { [urlEnvVar]: url, [envVar]: `Bearer ${token}` },
      args: [],
      config: { serverName, urlEnvVar, authorizationEnvVar: envVar }
    }
  }
)
