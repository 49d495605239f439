// example: not-run (test/demo.test.ts runs it and checks its transcript)
/**
 * The whole job, end to end, on loopback with nothing to set up (`npm start`):
 *
 * 1. start the embedded MCP server (`McpHttpServer`) on 127.0.0.1, a free port;
 * 2. mint a credential for a thread;
 * 3. launch a child process the way a provider adapter launches an agent CLI,
 *    the token only in its environment (`ProviderLaunch.generic`); the child
 *    connects with the official MCP SDK client and calls `session_info`,
 *    which answers with its thread and provider instance, twice, showing the
 *    expiry slide;
 * 4. stop the session: the revocation hook fires, and the child's next call
 *    gets a 401 with the reason;
 * 5. shut down: the server stops, and the shutdown hooks fire for what is
 *    still live.
 *
 * `npm start -- serve` (or `npm run serve`) keeps the server up instead and
 * prints, for a freshly minted credential, what to paste into Claude Code and
 * Codex. Only that mode prints a token, because you have to paste it.
 */
import { spawn } from "node:child_process"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { NodeRuntime } from "@effect/platform-node"
import { Cause, Effect, Exit, Layer, Runtime, Stream } from "effect"
import { McpHttpServer, McpSessionRegistry, ProviderLaunch, type Revocation } from "../src/index.ts"

const say = (line = "") => Effect.sync(() => console.log(line))
const step = (n: number, title: string) => say(`\n${n}. ${title}`)

const printHook: Revocation.RevocationHook = (event) =>
  say(
    `   revocation hook: ${event.credential.credentialId} (thread "${event.credential.threadId}", ` +
      `${event.credential.providerInstanceId}) left, reason "${event.reason}"`
  )

const registryLayer = McpSessionRegistry.layer({ idleTimeout: "30 minutes", hooks: [printHook] })

/** Launches `examples/demo-agent.ts` with the same Node and tsx, and relays its output. */
const runAgent = (env: Readonly<Record<string, string>>, onRequest: (request: string) => Effect.Effect<void>) =>
  Effect.gen(function*() {
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        spawn(process.execPath, ["--import", import.meta.resolve("tsx"), fileURLToPath(import.meta.resolve("./demo-agent.ts"))], {
          env: { ...process.env, ...env },
          stdio: ["pipe", "pipe", "inherit"]
        })
      ),
      (child) => Effect.sync(() => child.exitCode === null && child.kill())
    )
    const exited = Effect.callback<number>((resume) => {
      if (child.exitCode !== null) return resume(Effect.succeed(child.exitCode))
      child.once("exit", (code) => resume(Effect.succeed(code ?? 1)))
    })
    yield* Stream.fromAsyncIterable(createInterface({ input: child.stdout }), (error) => error).pipe(
      Stream.runForEach((line) =>
        line.startsWith("@@")
          ? Effect.andThen(onRequest(line.slice(2)), Effect.sync(() => child.stdin.write("done\n")))
          : say(`   agent | ${line}`)
      ),
      Effect.orDie
    )
    return yield* exited
  }).pipe(Effect.scoped)

const demo = Effect.gen(function*() {
  const startedAt = Date.now()
  yield* say("mcp-session-registry demo: a host, its MCP server and one agent session, all on 127.0.0.1")

  const exitCode = yield* Effect.gen(function*() {
    const server = yield* McpHttpServer.McpHttpServer
    const registry = yield* McpSessionRegistry.McpSessionRegistry

    yield* step(1, "Embedded MCP server started")
    yield* say(`   listening at ${server.url} (Streamable HTTP, bearer guard in front)`)

    yield* step(2, "Credential minted for the session")
    const credential = yield* registry.issue({ threadId: "thread-1", providerInstanceId: "demo-agent" })
    yield* say(`   ${credential.credentialId} for thread "thread-1", provider instance "demo-agent"`)
    yield* say(`   token: ${credential.token} (never printed, logged or put in argv)`)
    // Another live session, to show the shutdown hooks at the end.
    yield* registry.issue({ threadId: "thread-2", providerInstanceId: "codex" })

    yield* step(3, "Agent launched as a child process, token only in its environment")
    const launch = yield* ProviderLaunch.generic({ credential, serverName: "host", endpoint: server.url })
    yield* say(`   env: ${Object.keys(launch.env).join(", ")}; argv: demo-agent.ts`)
    const code = yield* runAgent(launch.env, (request) =>
      request === "stop-my-session"
        ? Effect.gen(function*() {
          yield* step(4, "Session stopped by the host")
          yield* say(`   revokeProviderSession(${credential.providerSessionId})`)
          yield* Effect.orDie(registry.revokeProviderSession(credential.providerSessionId))
        })
        : Effect.void)
    yield* say(`   agent exited with code ${code}`)

    yield* step(5, "Shutting down")
    return code
  }).pipe(Effect.provide(McpHttpServer.layer().pipe(Layer.provideMerge(registryLayer))))

  yield* say(`   server stopped, registry closed`)
  yield* say(`\nDone in ${((Date.now() - startedAt) / 1000).toFixed(1)} s.`)
  if (exitCode !== 0) return yield* Effect.die(new Error(`the agent exited with code ${exitCode}`))
})

const serve = (port: number) =>
  Effect.gen(function*() {
    const server = yield* McpHttpServer.McpHttpServer
    const registry = yield* McpSessionRegistry.McpSessionRegistry
    const credential = yield* registry.issue({ threadId: "serve", providerInstanceId: "your-agent" })
    const input = { credential, serverName: "session-registry", endpoint: server.url }
    const claude = yield* ProviderLaunch.claudeCode(input)
    const codex = yield* ProviderLaunch.codex(input)
    const variable = ProviderLaunch.defaultEnvVar
    const entry = (claude.config as { mcpServers: Record<string, unknown> }).mcpServers[input.serverName]
    const token = claude.env[variable]!
    yield* say(`MCP server listening at ${server.url} (Ctrl-C to stop)`)
    yield* say(`Credential ${credential.credentialId} for thread "serve": idle timeout 30 minutes, every call slides it.`)
    yield* say(`\nThe token is printed below only because you must paste it. Treat it like a password.`)
    yield* say(`\n1. In the shell that will run the agent:\n\n   export ${variable}='${token}'`)
    yield* say(`\n2a. Claude Code:\n\n   claude mcp add-json ${input.serverName} '${JSON.stringify(entry)}'`)
    yield* say(`\n    or for one run:  claude ${claude.args.map((arg) => `'${arg}'`).join(" ")}`)
    yield* say(`\n2b. Codex:\n\n   codex ${codex.args.map((arg, i) => (i % 2 === 1 ? `'${arg}'` : arg)).join(" ")}`)
    yield* say(`\n    or in ~/.codex/config.toml:\n`)
    yield* say(`   [mcp_servers.${input.serverName}]`)
    yield* say(`   url = ${JSON.stringify(server.url)}`)
    yield* say(`   bearer_token_env_var = ${JSON.stringify(variable)}`)
    yield* say(`\n3. Ask the agent to call the session_info tool.`)
    if (port === 0) yield* say(`\n(The port changes on every run; pass --port <n> to keep it.)`)
    return yield* Effect.never
  }).pipe(
    Effect.provide(McpHttpServer.layer({ port, logRequests: true }).pipe(Layer.provideMerge(registryLayer)))
  )

const args = process.argv.slice(2)
const portFlag = args.indexOf("--port")
const port = portFlag === -1 ? 0 : Number(args[portFlag + 1])

// Ctrl-C is how serve mode is meant to end: exit 0 once the finalizers ran.
const teardown: Runtime.Teardown = (exit, onExit) =>
  Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause) ? onExit(0) : Runtime.defaultTeardown(exit, onExit)

NodeRuntime.runMain(args.includes("serve") ? serve(port) : demo, { teardown })
