// example: not-run (the demo launches it as its agent)
/**
 * The child process of the demo: a stand-in for an agent CLI (Claude Code,
 * Codex, ...) launched by its host. It finds the MCP endpoint and its
 * `Authorization` header in its environment, exactly as `ProviderLaunch.generic`
 * put them there, and talks to the host with the official MCP SDK client.
 *
 * It writes what it sees to stdout, one line at a time. A line starting with
 * `@@` is a request to the host (here: "stop my session now") and is answered
 * with one line on stdin.
 */
import { createInterface } from "node:readline"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport, StreamableHTTPError } from "@modelcontextprotocol/sdk/client/streamableHttp.js"

const url = process.env.MCP_SESSION_URL
const authorization = process.env.MCP_SESSION_AUTHORIZATION
if (url === undefined || authorization === undefined) {
  console.error("demo-agent: MCP_SESSION_URL and MCP_SESSION_AUTHORIZATION must be set")
  process.exit(2)
}

const say = (line: string) => console.log(line)
const time = (millis: number) => new Date(millis).toISOString().slice(11, 23)
const stdin = createInterface({ input: process.stdin })[Symbol.asyncIterator]()
const askHost = async (request: string) => {
  say(`@@${request}`)
  await stdin.next()
}

interface SessionInfo {
  readonly threadId: string
  readonly providerInstanceId: string
  readonly credentialId: string
  readonly idleExpiresAt: number
}

const main = async () => {
  const token = authorization.slice("Bearer ".length)
  say(`token in my environment: yes; in my argv: ${process.argv.some((arg) => arg.includes(token)) ? "YES (bad)" : "no"}`)

  const client = new Client({ name: "demo-agent", version: "0.1.0" })
  // Keeps the last challenge, to show what the server answered on a refusal.
  let challenge: string | null = null
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: authorization } },
    fetch: async (input, init) => {
      const response = await fetch(input, init)
      challenge = response.headers.get("www-authenticate")
      return response
    }
  })
  await client.connect(transport)
  const tools = await client.listTools()
  say(`connected with the official MCP SDK client; tools: ${tools.tools.map((tool) => tool.name).join(", ")}`)

  const sessionInfo = async () =>
    (await client.callTool({ name: "session_info", arguments: {} })).structuredContent as unknown as SessionInfo

  const first = await sessionInfo()
  say(`session_info -> thread "${first.threadId}", provider instance "${first.providerInstanceId}"`)
  say(`  idle expiry ${time(first.idleExpiresAt)}`)
  await new Promise((resolve) => setTimeout(resolve, 1_000))
  const second = await sessionInfo()
  const slid = ((second.idleExpiresAt - first.idleExpiresAt) / 1000).toFixed(1)
  say(`session_info again 1 s later -> idle expiry ${time(second.idleExpiresAt)} (slid forward ${slid} s)`)

  await askHost("stop-my-session")

  try {
    await sessionInfo()
    say("next call: accepted (unexpected!)")
    process.exitCode = 1
  } catch (error) {
    if (error instanceof StreamableHTTPError && error.code === 401) {
      const body = JSON.parse(error.message.slice(error.message.indexOf("{")))
      say(`next call refused: HTTP 401, "${body.error.message}" (reason: ${body.error.data.reason})`)
      say(`  WWW-Authenticate: ${challenge}`)
    } else {
      say(`next call failed unexpectedly: ${String(error)}`)
      process.exitCode = 1
    }
  }
  await client.close()
}

main().then(
  () => process.exit(),
  (error) => {
    console.error(`demo-agent failed: ${error instanceof Error ? error.message : String(error)}`)
    process.exit(1)
  }
)
