/**
 * Opt-in check of the `ProviderLaunch` forms against the real agent CLIs:
 * Claude Code, Codex, Gemini CLI and OpenCode. Not part of `npm test`: it
 * installs the four npm packages into a temporary directory (never into this
 * project) and takes a minute or two.
 *
 *   npm run check:clis
 *   CHECK_CLIS_DIR=/path/with/node_modules npm run check:clis   # reuse an install
 *
 * For each CLI it issues a credential, builds the launch config, runs the CLI
 * with that config and a throwaway HOME, and checks that:
 *
 * - the CLI reached the guarded MCP server with that credential (the server
 *   saw an authenticated request from it);
 * - after the credential is revoked, the CLI is refused;
 * - the token never appears on the command line or in any file the CLI wrote.
 *
 * It also reports the OAuth discovery and client registration requests each
 * CLI made (`/.well-known/...`, `/register`): the launch configs turn OAuth
 * off, so a refusal should reach the agent as such and none should be made.
 *
 * No model is needed: each CLI connects its MCP servers before (or without)
 * talking to one. Everything stays on 127.0.0.1; Codex is pointed at a model
 * provider on a closed loopback port.
 */
import { requireBearerAuth } from "@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js"
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js"
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js"
import { Effect, ManagedRuntime, Redacted } from "effect"
import express from "express"
import { spawn } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { Credential } from "../src/index.ts"
import { McpSessionRegistry, ProviderLaunch } from "../src/index.ts"
import * as McpSdk from "../src/McpSdk.ts"

const packages = ["@anthropic-ai/claude-code", "@openai/codex", "@google/gemini-cli", "opencode-ai"]

// ---- the CLIs, installed out of tree -------------------------------------

const run = (
  command: string,
  args: ReadonlyArray<string>,
  options: { env: NodeJS.ProcessEnv; cwd: string; timeoutMs: number; until?: () => boolean }
): Promise<{ code: number | null; output: string }> =>
  new Promise((resolve) => {
    const child = spawn(command, args, { env: options.env, cwd: options.cwd, stdio: ["ignore", "pipe", "pipe"] })
    let output = ""
    child.stdout.on("data", (chunk) => (output += chunk))
    child.stderr.on("data", (chunk) => (output += chunk))
    const stop = () => child.exitCode === null && child.kill("SIGKILL")
    const timer = setTimeout(stop, options.timeoutMs)
    // Some CLIs keep retrying their model after the MCP check is done.
    const poll = options.until === undefined ? undefined : setInterval(() => options.until!() && stop(), 200)
    child.on("close", (code) => {
      clearTimeout(timer)
      if (poll !== undefined) clearInterval(poll)
      resolve({ code, output })
    })
  })

// Returns the install directory and whether this run created it (and so
// removes it at the end).
const install = async (): Promise<{ dir: string; created: boolean }> => {
  const reuse = process.env["CHECK_CLIS_DIR"]
  if (reuse !== undefined) return { dir: reuse, created: false }
  const dir = mkdtempSync(join(tmpdir(), "mcp-session-registry-clis-"))
  writeFileSync(join(dir, "package.json"), JSON.stringify({ private: true }))
  console.log(`Installing ${packages.join(", ")} into ${dir} ...`)
  const npm = process.env["npm_execpath"]
  const [command, args] = npm === undefined ? ["npm", []] : [process.execPath, [npm]]
  const result = await run(command, [...args, "install", "--no-audit", "--no-fund", ...packages], {
    env: process.env,
    cwd: dir,
    timeoutMs: 600_000
  })
  if (result.code !== 0) throw new Error(`npm install failed:\n${result.output}`)
  return { dir, created: true }
}

// ---- the guarded MCP server ------------------------------------------------

const runtime = ManagedRuntime.make(McpSessionRegistry.layer())
const registry = <A, E>(f: (r: McpSessionRegistry.McpSessionRegistry["Service"]) => Effect.Effect<A, E>) =>
  runtime.runPromise(McpSessionRegistry.McpSessionRegistry.use(f))

// Which provider instances got through the guard, and which were refused.
const accepted = new Set<string>()
const refusals: Array<string> = []
// OAuth discovery and dynamic client registration requests, in order.
const oauthProbes: Array<string> = []

const serve = (): Promise<{ endpoint: string; close: () => void }> =>
  new Promise((resolve) => {
    const app = express()
    app.use((req, res, next) => {
      if (!req.path.startsWith("/.well-known/") && req.path !== "/register") return next()
      oauthProbes.push(`${req.method} ${req.path}`)
      res.status(404).json({ error: "not_found" })
    })
    app.use("/mcp", (req, res, next) => {
      res.on("finish", () => {
        if (res.statusCode === 401) refusals.push(String(res.getHeader("www-authenticate")))
        else if (req.auth !== undefined) accepted.add(req.auth.clientId)
      })
      next()
    })
    app.use("/mcp", requireBearerAuth({ verifier: McpSdk.tokenVerifierFromRuntime(runtime) }), express.json())
    app.post("/mcp", async (req, res) => {
      const server = new McpServer({ name: "check-clis", version: "1.0.0" })
      server.registerTool("whoami", { description: "Who is calling" }, async (extra) => ({
        content: [{ type: "text", text: JSON.stringify(McpSdk.caller(extra.authInfo) ?? null) }]
      }))
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true })
      res.on("close", () => void transport.close().then(() => server.close()))
      await server.connect(transport)
      await transport.handleRequest(req, res, req.body)
    })
    app.all("/mcp", (_req, res) => void res.status(405).set("allow", "POST").end())
    const server = app.listen(0, "127.0.0.1", () =>
      resolve({
        endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
        close: () => {
          server.closeAllConnections()
          server.close()
        }
      })
    )
  })

// ---- one check per CLI -----------------------------------------------------

interface Sandbox {
  readonly home: string
  readonly cwd: string
  readonly env: NodeJS.ProcessEnv
}

// A throwaway HOME, so no CLI reads or writes the user's own config.
const sandbox = (name: string, launch: ProviderLaunch.LaunchConfig, extra: NodeJS.ProcessEnv = {}): Sandbox => {
  const home = mkdtempSync(join(tmpdir(), `check-${name}-`))
  const cwd = join(home, "project")
  mkdirSync(cwd)
  return {
    home,
    cwd,
    env: {
      PATH: process.env["PATH"],
      HOME: home,
      XDG_CONFIG_HOME: join(home, ".config"),
      XDG_DATA_HOME: join(home, ".local", "share"),
      XDG_CACHE_HOME: join(home, ".cache"),
      XDG_STATE_HOME: join(home, ".local", "state"),
      NO_COLOR: "1",
      ...extra,
      ...launch.env
    }
  }
}

const filesHolding = (dir: string, secret: string): Array<string> => {
  const found: Array<string> = []
  const walk = (path: string) => {
    const stat = statSync(path, { throwIfNoEntry: false })
    if (stat === undefined) return
    if (stat.isDirectory()) for (const entry of readdirSync(path)) walk(join(path, entry))
    else if (stat.isFile() && stat.size < 20_000_000 && readFileSync(path, "latin1").includes(secret)) found.push(path)
  }
  walk(dir)
  return found
}

interface Check {
  readonly cli: string
  readonly form: string
  readonly connected: boolean
  readonly refusedAfterRevoke: boolean
  readonly tokenInArgv: boolean
  readonly tokenInFiles: Array<string>
  /** OAuth discovery or registration requests the CLI made. */
  readonly oauthProbes: Array<string>
  readonly note: string
}

// `done` says when the CLI has shown what it does (connected, or been
// refused), for CLIs that would go on trying to reach a model.
type Attempt = (sandbox: Sandbox, launch: ProviderLaunch.LaunchConfig, done: () => boolean) => Promise<string>

const check = async (
  cli: string,
  form: string,
  make: (input: ProviderLaunch.LaunchInput) => Effect.Effect<ProviderLaunch.LaunchConfig, ProviderLaunch.InvalidLaunchInput>,
  endpoint: string,
  attempt: Attempt,
  extraEnv: NodeJS.ProcessEnv = {}
): Promise<Check> => {
  const id = `${cli}:${form}`
  const credential: Credential.IssuedCredential = await registry((r) =>
    r.issue({ threadId: "check-clis", providerInstanceId: id })
  )
  const token = Redacted.value(credential.token)
  const launch = await Effect.runPromise(make({ credential, serverName: "host", endpoint }))
  const box = sandbox(cli, launch, extraEnv)
  const probesBefore = oauthProbes.length
  try {
    const output = await attempt(box, launch, () => accepted.has(id))
    const connected = accepted.has(id)
    await registry((r) => r.revoke(credential.credentialId))
    const before = refusals.length
    const refused = () => refusals.slice(before).some((header) => header.includes("was revoked"))
    const after = await attempt(box, launch, refused)
    const refusedAfterRevoke = refused()
    return {
      cli,
      form,
      connected,
      refusedAfterRevoke,
      tokenInArgv: launch.args.some((arg) => arg.includes(token)),
      tokenInFiles: filesHolding(box.home, token),
      oauthProbes: oauthProbes.slice(probesBefore),
      note: connected ? "" : `${output}\n---\n${after}`.replaceAll(token, "<token>").slice(-2000)
    }
  } finally {
    rmSync(box.home, { recursive: true, force: true })
  }
}

const main = async () => {
  const { created, dir } = await install()
  try {
    await checkAll(dir)
  } finally {
    if (created) rmSync(dir, { recursive: true, force: true })
  }
}

const checkAll = async (dir: string) => {
  const bin = (name: string) => join(dir, "node_modules", ".bin", name)
  for (const name of ["claude", "codex", "gemini", "opencode"]) {
    if (!existsSync(bin(name))) throw new Error(`${bin(name)} is missing; is ${dir} an install of ${packages.join(", ")}?`)
  }
  const versions = await Promise.all(
    ["claude", "codex", "gemini", "opencode"].map(async (name) =>
      `${name} ${(await run(bin(name), ["--version"], { env: process.env, cwd: dir, timeoutMs: 60_000 })).output.trim()}`
    )
  )
  console.log(versions.join("\n"))

  const { close, endpoint } = await serve()
  const timeoutMs = 60_000
  const results: Array<Check> = []

  // Claude Code, 1: `claude mcp add-json` stores the entry (with `${VAR}`,
  // not the token), and `claude mcp list` health-checks it without a model.
  results.push(
    await check("claude", "mcp add-json + mcp list", ProviderLaunch.claudeCode, endpoint, async (box, launch) => {
      const config = launch.config as { mcpServers: Record<string, unknown> }
      const entry = JSON.stringify(config.mcpServers["host"])
      const env = { ...box.env, CLAUDE_CONFIG_DIR: join(box.home, ".claude") }
      await run(bin("claude"), ["mcp", "remove", "-s", "user", "host"], { env, cwd: box.cwd, timeoutMs })
      const added = await run(bin("claude"), ["mcp", "add-json", "-s", "user", "host", entry], { env, cwd: box.cwd, timeoutMs })
      const listed = await run(bin("claude"), ["mcp", "list"], { env, cwd: box.cwd, timeoutMs })
      return added.output + listed.output
    }, { DISABLE_AUTOUPDATER: "1", CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1" })
  )

  // Claude Code, 2: the `--mcp-config=<json>` argument of a session. Not
  // logged in, `claude -p` still connects its MCP servers before it stops.
  results.push(
    await check("claude", "--mcp-config (args)", ProviderLaunch.claudeCode, endpoint, async (box, launch, done) => {
      const env = { ...box.env, CLAUDE_CONFIG_DIR: join(box.home, ".claude") }
      const args = ["-p", "reply with ok", "--strict-mcp-config", ...launch.args]
      const result = await run(bin("claude"), args, { env, cwd: box.cwd, timeoutMs, until: done })
      return result.output
    }, { DISABLE_AUTOUPDATER: "1", CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1" })
  )

  // Codex: the `-c` arguments. `codex mcp get --json` shows how they parse;
  // `codex exec` connects the server at session start. Its model provider is a
  // closed loopback port, so nothing leaves the machine.
  results.push(
    await check("codex", "-c args + exec", ProviderLaunch.codex, endpoint, async (box, launch, done) => {
      const env = { ...box.env, CODEX_HOME: join(box.home, ".codex") }
      mkdirSync(env.CODEX_HOME, { recursive: true })
      const parsed = await run(bin("codex"), [...launch.args, "mcp", "get", "host", "--json"], { env, cwd: box.cwd, timeoutMs })
      const offline = [
        "-c",
        `model_providers.offline={name="offline",base_url="http://127.0.0.1:9/v1",wire_api="responses"}`,
        "-c",
        `model_provider="offline"`
      ]
      const args = ["exec", "--skip-git-repo-check", ...offline, ...launch.args, "reply with ok"]
      const session = await run(bin("codex"), args, { env, cwd: box.cwd, timeoutMs, until: done })
      return parsed.output + session.output
    })
  )

  // Gemini CLI: the settings written to the workspace's .gemini/settings.json;
  // `gemini mcp list` connects each server (in a trusted folder).
  results.push(
    await check("gemini", "settings.json + mcp list", ProviderLaunch.geminiCli, endpoint, async (box, launch) => {
      mkdirSync(join(box.cwd, ".gemini"), { recursive: true })
      writeFileSync(join(box.cwd, ".gemini", "settings.json"), JSON.stringify(launch.config, null, 2))
      const env = { ...box.env, GEMINI_CLI_TRUST_WORKSPACE: "true" }
      return (await run(bin("gemini"), ["mcp", "list"], { env, cwd: box.cwd, timeoutMs })).output
    })
  )

  // OpenCode: the config passed in OPENCODE_CONFIG_CONTENT; `opencode mcp
  // list` connects each server.
  results.push(
    await check("opencode", "OPENCODE_CONFIG_CONTENT + mcp list", ProviderLaunch.openCode, endpoint, async (box, launch) => {
      const env = { ...box.env, OPENCODE_CONFIG_CONTENT: JSON.stringify(launch.config) }
      return (await run(bin("opencode"), ["mcp", "list"], { env, cwd: box.cwd, timeoutMs })).output
    })
  )

  close()
  await runtime.dispose()

  let failed = false
  console.log("\ncli       form                                connected  refused after revoke  token in argv  token in files")
  for (const r of results) {
    const ok = r.connected && r.refusedAfterRevoke && !r.tokenInArgv && r.tokenInFiles.length === 0
    failed ||= !ok
    console.log(
      `${r.cli.padEnd(9)} ${r.form.padEnd(35)} ${String(r.connected).padEnd(10)} ${String(r.refusedAfterRevoke).padEnd(21)} ${
        String(r.tokenInArgv).padEnd(14)
      } ${r.tokenInFiles.length === 0 ? "none" : r.tokenInFiles.join(", ")}`
    )
    if (!ok && r.note !== "") console.log(`  output:\n${r.note.replace(/^/gm, "    ")}`)
    // Reported, not failed: a CLI with no OAuth switch may probe anyway.
    if (r.oauthProbes.length > 0) console.log(`  OAuth probes despite OAuth off: ${r.oauthProbes.join(", ")}`)
  }
  console.log(failed ? "\nSome checks FAILED." : "\nAll checks passed.")
  process.exitCode = failed ? 1 : 0
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
