// example: not-run (npm run demo:replicas; test/demo.test.ts runs it and checks its transcript)
/**
 * Two replicas of an MCP gateway on one Redis (`npm run demo:replicas`),
 * step by step:
 *
 * 1. a throwaway `redis-server` (or the one at `REDIS_URL`);
 * 2. replicas A and B, each its own process with its own MCP server, both
 *    on one registry prefix;
 * 3. a credential minted on A; its agent (the official MCP SDK client) calls
 *    B, which knows it;
 * 4. A restarts, a rolling deploy: nothing is revoked, and the agent keeps
 *    working against the new A;
 * 5. the session is revoked on B: the agent's next call to A is refused (401).
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { type RedisServer, startRedisServer } from "../test/support/redis.ts"

const say = (line = "") => console.log(line)
const step = (n: number, title: string) => say(`\n${n}. ${title}`)

interface Replica {
  readonly name: string
  readonly url: string
  readonly ask: (command: string) => Promise<ReadonlyArray<string>>
  readonly stop: () => Promise<void>
}

/** Starts one replica process and waits for its MCP server's URL. */
const startReplica = async (name: string, redisUrl: string): Promise<Replica> => {
  const child: ChildProcessWithoutNullStreams = spawn(
    process.execPath,
    ["--import", import.meta.resolve("tsx"), fileURLToPath(import.meta.resolve("./demo-replica.ts"))],
    { env: { ...process.env, REDIS_URL: redisUrl, REPLICA_NAME: name }, stdio: "pipe" }
  )
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => process.stderr.write(chunk))
  const waiting: Array<(words: ReadonlyArray<string>) => void> = []
  let onUrl: (url: string) => void = () => {}
  const url = new Promise<string>((resolve) => (onUrl = resolve))
  createInterface({ input: child.stdout }).on("line", (line) => {
    if (!line.startsWith("@@")) return say(`   ${name} | ${line}`)
    const words = line.slice(2).split(" ")
    if (words[0] === "listening") onUrl(words[1]!)
    else waiting.shift()?.(words.slice(1))
  })
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  return {
    name,
    url: await url,
    ask: (command) =>
      new Promise((resolve) => {
        waiting.push(resolve)
        child.stdin.write(`${command}\n`)
      }),
    stop: async () => {
      child.kill("SIGTERM")
      await exited
    }
  }
}

/** One agent call: connect with the token and call `session_info`. */
const agentCall = async (url: string, token: string): Promise<string> => {
  let status = 0
  let challenge: string | null = null
  const client = new Client({ name: "demo-agent", version: "0.1.0" })
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
    fetch: async (input, init) => {
      const response = await fetch(input, init)
      status = response.status
      challenge = response.headers.get("www-authenticate")
      return response
    }
  })
  try {
    await client.connect(transport)
    const result = await client.callTool({ name: "session_info", arguments: {} })
    const info = result.structuredContent as { readonly threadId: string; readonly credentialId: string }
    return `session_info -> thread "${info.threadId}" (${info.credentialId})`
  } catch {
    const reason = (challenge as string | null)?.match(/error_description="([^"]*)"/)?.[1]
    return `refused: HTTP ${status}${reason === undefined ? "" : `, ${reason}`}`
  } finally {
    await client.close().catch(() => {})
  }
}

const main = async () => {
  const startedAt = Date.now()
  say("mcp-session-registry demo: two replicas of an MCP gateway on one Redis, all on 127.0.0.1")
  let redis: RedisServer | undefined
  const replicas: Array<Replica> = []
  try {
    step(1, "Redis")
    let redisUrl = process.env["REDIS_URL"]
    if (redisUrl === undefined) {
      redis = await startRedisServer()
      redisUrl = redis.url
      say(`   a throwaway redis-server at ${redisUrl} (set REDIS_URL to use your own)`)
    } else {
      say(`   the redis-server at REDIS_URL`)
    }

    step(2, "Replicas A and B started: two processes, one registry prefix")
    let a = await startReplica("A", redisUrl)
    const b = await startReplica("B", redisUrl)
    replicas.push(a, b)
    say(`   A at ${a.url}`)
    say(`   B at ${b.url}`)

    step(3, "Credential minted on A; its agent calls B")
    const [credentialId, token] = await a.ask("issue thread-1")
    say(`   ${credentialId} for thread "thread-1" (the token travels only to the agent)`)
    say(`   agent -> B: ${await agentCall(b.url, token!)}`)

    step(4, "A restarts (a rolling deploy): nothing is revoked")
    await a.stop()
    replicas.splice(replicas.indexOf(a), 1)
    say(`   A stopped`)
    a = await startReplica("A", redisUrl)
    replicas.push(a)
    say(`   A started again at ${a.url}`)
    say(`   agent -> A: ${await agentCall(a.url, token!)}`)

    step(5, "Session revoked on B: refused on A at once")
    const [live] = await b.ask(`revoke ${credentialId}`)
    say(`   B: revoke(${credentialId}) -> ${live}`)
    say(`   agent -> A: ${await agentCall(a.url, token!)}`)

    step(6, "Shutting down")
  } finally {
    for (const replica of replicas) await replica.stop()
    await redis?.stop()
  }
  say(`   replicas stopped, redis-server stopped`)
  say(`\nDone in ${((Date.now() - startedAt) / 1000).toFixed(1)} s.`)
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
