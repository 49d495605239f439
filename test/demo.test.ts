/**
 * The README's main command, run for real: `examples/demo.ts` as its own
 * process (same Node, tsx loaded with `--import`, as `npm start` does), with
 * its transcript checked line by line; and the `serve` mode, whose printed
 * instructions are followed by the official MCP SDK client.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { assert, describe, it } from "@effect/vitest"
import { BearerToken } from "../src/index.ts"

const root = fileURLToPath(new URL("..", import.meta.url))

const start = (args: ReadonlyArray<string>): ChildProcessWithoutNullStreams =>
  spawn(process.execPath, ["--import", "tsx", "examples/demo.ts", ...args], { cwd: root, stdio: "pipe" })

const collect = (child: ChildProcessWithoutNullStreams) => {
  const out = { stdout: "", stderr: "" }
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (out.stdout += chunk))
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (out.stderr += chunk))
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  return { out, exited }
}

const waitFor = async (read: () => string, pattern: RegExp, timeoutMillis: number): Promise<RegExpMatchArray> => {
  const deadline = Date.now() + timeoutMillis
  while (Date.now() < deadline) {
    const match = read().match(pattern)
    if (match !== null) return match
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`timed out waiting for ${pattern} in:\n${read()}`)
}

/** Asserts that `lines` appear in `transcript` in this order. */
const assertInOrder = (transcript: string, lines: ReadonlyArray<string | RegExp>) => {
  let from = 0
  for (const line of lines) {
    const rest = transcript.slice(from)
    const match = typeof line === "string"
      ? { index: rest.indexOf(line), length: line.length }
      : (() => {
        const found = rest.match(line)
        return found === null ? { index: -1, length: 0 } : { index: found.index!, length: found[0].length }
      })()
    assert.isAtLeast(match.index, 0, `expected ${String(line)} after offset ${from} in:\n${transcript}`)
    from += match.index + match.length
  }
}

describe("demo", () => {
  it("runs the whole job on loopback and says so", async () => {
    const child = start([])
    const { exited, out } = collect(child)
    const code = await exited
    assert.strictEqual(code, 0, out.stderr)
    assert.strictEqual(out.stderr, "")
    const transcript = out.stdout
    assertInOrder(transcript, [
      /1\. Embedded MCP server started\n {3}listening at http:\/\/127\.0\.0\.1:\d+\/mcp/,
      /2\. Credential minted for the session\n {3}cred_\S+ for thread "thread-1", provider instance "demo-agent"/,
      "token: <redacted:McpSessionToken>",
      "3. Agent launched as a child process, token only in its environment",
      "env: MCP_SESSION_URL, MCP_SESSION_AUTHORIZATION; argv: demo-agent.ts",
      "agent | token in my environment: yes; in my argv: no",
      "agent | connected with the official MCP SDK client; tools: session_info",
      "agent | session_info -> thread \"thread-1\", provider instance \"demo-agent\"",
      /agent \| session_info again 1 s later -> idle expiry \S+ \(slid forward [1-9]\d*\.\d s\)/,
      "4. Session stopped by the host",
      /revocation hook: cred_\S+ \(thread "thread-1", demo-agent\) left, reason "session-stopped"/,
      "agent | next call refused: HTTP 401, \"Unauthorized: the bearer token was revoked\" (reason: revoked)",
      "agent |   WWW-Authenticate: Bearer realm=\"mcp\", error=\"invalid_token\", " +
      "error_description=\"the bearer token was revoked\"",
      "agent exited with code 0",
      "5. Shutting down",
      /revocation hook: cred_\S+ \(thread "thread-2", codex\) left, reason "shutdown"/,
      "server stopped, registry closed",
      /Done in \d+\.\d s\./
    ])
    // Demo mode never shows a token.
    assert.notMatch(transcript, BearerToken.pattern)
  })

  it("serve mode prints working instructions for Claude Code and Codex, and shuts down on SIGINT", async () => {
    const child = start(["serve"])
    const { exited, out } = collect(child)
    try {
      const [, token] = await waitFor(() => out.stdout, /export MCP_SESSION_TOKEN='(mcpsr_[A-Za-z0-9_-]{49})'/, 30_000)
      const [, url] = await waitFor(() => out.stdout, /url = "(http:\/\/127\.0\.0\.1:\d+\/mcp)"/, 5_000)
      await waitFor(() => out.stdout, /Ask the agent to call the session_info tool/, 5_000)
      assert.include(
        out.stdout,
        `claude mcp add-json session-registry '{"type":"http","url":"${url}","headers":{"Authorization":"Bearer \${MCP_SESSION_TOKEN}"}}'`
      )
      assert.include(out.stdout, `codex -c 'mcp_servers.session-registry.url="${url}"'`)
      assert.include(out.stdout, `bearer_token_env_var = "MCP_SESSION_TOKEN"`)
      assert.include(out.stdout, "only because you must paste it")

      // Follow the instructions: the printed token and URL work.
      const client = new Client({ name: "pasted-config", version: "1.0.0" })
      await client.connect(
        new StreamableHTTPClientTransport(new URL(url!), {
          requestInit: { headers: { Authorization: `Bearer ${token}` } }
        })
      )
      const result = await client.callTool({ name: "session_info", arguments: {} })
      assert.strictEqual((result.structuredContent as { threadId: string }).threadId, "serve")
      await client.close()
    } finally {
      child.kill("SIGINT")
    }
    assert.strictEqual(await exited, 0, out.stderr)
    assert.match(out.stdout, /revocation hook: cred_\S+ \(thread "serve", your-agent\) left, reason "shutdown"/)
  })
})
