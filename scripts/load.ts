/**
 * Load test of the guard (`npm run load`; not part of CI).
 *
 * The main thread serves a guarded route on 127.0.0.1 with 10,000 live
 * credentials and churns in the background (every 10 ms a thread is revoked
 * and re-issued). A worker thread, on the other core, drives keep-alive HTTP
 * load for `LOAD_SECONDS` (default 60) with a mix of tokens, each with the
 * status it must get:
 *
 * - 60% stable valid tokens: 200;
 * - 10% tokens of churned threads: 200, or 401 once their thread is revoked;
 * - 10% revoked tokens: 401;
 * - 20% garbage (random text, tokens one character off, well-formed
 *   strangers): 401.
 *
 * Every few seconds it prints a progress line to stderr. At the end it prints
 * the report as JSON on stdout (requests, statuses, p50/p99/max latency, the
 * server's heap after a full GC at start and end) and a one-line verdict on
 * stderr, and exits non-zero on any unexpected status, any 5xx, or a heap
 * that grew by more than 25%. Tokens go to the worker in memory, never
 * through argv, the environment or a file.
 *
 * `npm run load -- --help` lists the flags; each has an environment variable.
 */
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Effect, Exit, Layer, Logger, Redacted, Scope } from "effect"
import { HttpRouter, HttpServer, HttpServerResponse } from "effect/http"
import { createServer } from "node:http"
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads"
import { pool, type RawRequest } from "../test/hardening/rawClient.ts"
import { BearerToken, McpBearerAuth, McpSessionRegistry } from "../src/index.ts"

const usage = `npm run load -- [flags]: the guard under load on 127.0.0.1 (not part of npm test).

  --seconds=60            how long the load runs (LOAD_SECONDS)
  --connections=32        keep-alive connections (LOAD_CONNECTIONS)
  --progress-seconds=5    how often a progress line is printed (LOAD_PROGRESS_SECONDS)
  --help                  print this and exit
`

/** A positive number from `--name=value`, else the environment variable, else `fallback`. */
const option = (name: string, variable: string, fallback: number): number => {
  const flag = process.argv.slice(2).find((arg) => arg.startsWith(`--${name}=`))
  const text = flag?.slice(name.length + 3) ?? process.env[variable]
  if (text === undefined) return fallback
  const value = Number(text)
  if (!Number.isFinite(value) || value <= 0) {
    console.error(`--${name} (${variable}) must be a positive number, not ${JSON.stringify(text)}`)
    process.exit(2)
  }
  return value
}

if (isMainThread) {
  const known = /^--(seconds|connections|progress-seconds)=|^--help$/
  const unknown = process.argv.slice(2).find((arg) => !known.test(arg))
  if (unknown !== undefined) {
    console.error(`unknown argument ${JSON.stringify(unknown)}\n\n${usage}`)
    process.exit(2)
  }
  if (process.argv.includes("--help")) {
    console.log(usage)
    process.exit(0)
  }
}

/** The settings, read once by the server thread and handed to the worker with its port. */
interface Settings {
  readonly port: number
  readonly seconds: number
  readonly connections: number
  readonly progressSeconds: number
}
const { connections, progressSeconds, seconds } = isMainThread
  ? {
    seconds: option("seconds", "LOAD_SECONDS", 60),
    connections: Math.floor(option("connections", "LOAD_CONNECTIONS", 32)),
    progressSeconds: option("progress-seconds", "LOAD_PROGRESS_SECONDS", 5)
  }
  : (workerData as Settings)
const stableThreads = 450
const perStableThread = 20
const churnThreads = 100
const perChurnThread = 10
const revokedCount = 2_000

type Kind = "stable" | "churn" | "revoked" | "garbage"
type FromServer = { readonly type: "tokens"; readonly kind: Kind; readonly threadId?: string; readonly tokens: Array<string> }
/** What the worker tells the server thread: a progress tick, then the report. */
type FromClient =
  | {
    readonly type: "progress"
    readonly elapsedSeconds: number
    readonly requests: number
    readonly unexpected: number
    readonly fiveXx: number
  }
  | ({ readonly type: "report" } & Report)
interface Report {
  readonly requests: number
  readonly statuses: Record<string, number>
  readonly unexpected: Array<string>
  readonly latencies: { readonly p50: number; readonly p99: number; readonly max: number }
}

// ---------------------------------------------------------------- the client

const client = async (port: number): Promise<void> => {
  const stable: Array<string> = []
  const revoked: Array<string> = []
  const churn = new Map<string, Array<string>>()
  parentPort!.on("message", (message: FromServer) => {
    if (message.kind === "stable") stable.push(...message.tokens)
    else if (message.kind === "revoked") revoked.push(...message.tokens)
    else if (message.kind === "churn") churn.set(message.threadId!, message.tokens)
  })
  while (stable.length < stableThreads * perStableThread || revoked.length < revokedCount) {
    await new Promise((resolve) => setTimeout(resolve, 10))
  }

  let seed = 1
  const random = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed / 0x80000000
  }
  const pick = <A>(values: ReadonlyArray<A>): A => values[Math.floor(random() * values.length)]!
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
  const garbage = (): string => {
    const roll = random()
    if (roll < 0.3) return BearerToken.mint()
    if (roll < 0.6) {
      const real = pick(stable)
      const at = 6 + Math.floor(random() * 49)
      const c = alphabet[(alphabet.indexOf(real[at]!) + 1 + Math.floor(random() * 63)) % 64]!
      return real.slice(0, at) + c + real.slice(at + 1)
    }
    return Math.random().toString(36).repeat(1 + Math.floor(random() * 4))
  }
  const churnThreadIds = () => [...churn.keys()]

  const statuses: Record<string, number> = {}
  const unexpected: Array<string> = []
  const latencies: Array<number> = []
  const host = `127.0.0.1:${port}`
  const deadline = performance.now() + seconds * 1000
  const request = (token: string): RawRequest => ({
    method: "POST",
    path: "/mcp",
    headers: [["Host", host], ["Authorization", `Bearer ${token}`]]
  })
  const one = async (connection: ReturnType<typeof pool>) => {
    while (performance.now() < deadline) {
      const roll = random()
      const kind: Kind = roll < 0.6 ? "stable" : roll < 0.7 ? "churn" : roll < 0.8 ? "revoked" : "garbage"
      const token = kind === "stable"
        ? pick(stable)
        : kind === "churn"
        ? pick(churn.get(pick(churnThreadIds()))!)
        : kind === "revoked"
        ? pick(revoked)
        : garbage()
      const started = performance.now()
      const [response] = await connection.run([request(token)])
      latencies.push(performance.now() - started)
      const status = response!.status
      statuses[status] = (statuses[status] ?? 0) + 1
      const expected = kind === "stable" ? [200] : kind === "churn" ? [200, 401] : [401]
      if (!expected.includes(status) && unexpected.length < 20) unexpected.push(`${kind} got ${status}`)
    }
  }
  const progress = setInterval(() => {
    const fiveXx = Object.entries(statuses).filter(([status]) => Number(status) >= 500).reduce((n, [, c]) => n + c, 0)
    const elapsedSeconds = seconds - (deadline - performance.now()) / 1000
    const tick: FromClient = { type: "progress", elapsedSeconds, requests: latencies.length, unexpected: unexpected.length, fiveXx }
    parentPort!.postMessage(tick)
  }, progressSeconds * 1000)
  const pools = Array.from({ length: connections }, () => pool(port, 1))
  await Promise.all(pools.map(one))
  clearInterval(progress)
  pools.forEach((p) => p.close())
  latencies.sort((a, b) => a - b)
  const at = (q: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]! * 1000) / 1000
  const report: FromClient = {
    type: "report",
    requests: latencies.length,
    statuses,
    unexpected,
    latencies: { p50: at(0.5), p99: at(0.99), max: at(1) }
  }
  parentPort!.postMessage(report)
}

// ---------------------------------------------------------------- the server

const Route = HttpRouter.add(
  "*",
  "/mcp",
  Effect.gen(function*() {
    const credential = yield* McpBearerAuth.CurrentCredential
    return HttpServerResponse.text(credential.threadId)
  })
).pipe(Layer.provide(McpBearerAuth.layer()))

const Served = HttpRouter.serve(Route, { disableLogger: true, disableListenLog: true }).pipe(
  Layer.provideMerge(NodeHttpServer.layerServer(createServer, { host: "127.0.0.1", port: 0 })),
  Layer.provideMerge(McpSessionRegistry.layer({ maxCredentials: 20_000 }))
)

const heapAfterGc = () => {
  ;(globalThis as { gc?: () => void }).gc?.()
  return process.memoryUsage().heapUsed
}
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`

const server = Effect.gen(function*() {
  const scope = yield* Scope.make()
  const context = yield* Layer.buildWithScope(Served, scope)
  const registry = Context.get(context, McpSessionRegistry.McpSessionRegistry)
  const address = Context.get(context, HttpServer.HttpServer).address
  const port = address._tag === "UnixPathAddress" ? 0 : address.port
  const settings: Settings = { port, seconds, connections, progressSeconds }
  const worker = new Worker(new URL(import.meta.url), { workerData: settings })
  const send = (message: FromServer) => worker.postMessage(message)

  const tokenOf = (credential: { readonly token: Redacted.Redacted<string> }) => Redacted.value(credential.token)
  for (let t = 0; t < stableThreads; t++) {
    const tokens = []
    for (let p = 0; p < perStableThread; p++) {
      tokens.push(tokenOf(yield* registry.issue({ threadId: `stable-${t}`, providerInstanceId: `p${p}` })))
    }
    send({ type: "tokens", kind: "stable", tokens })
  }
  const issueChurnThread = Effect.fnUntraced(function*(threadId: string) {
    const tokens = []
    for (let p = 0; p < perChurnThread; p++) {
      tokens.push(tokenOf(yield* registry.issue({ threadId, providerInstanceId: `p${p}` })))
    }
    send({ type: "tokens", kind: "churn", threadId, tokens })
  })
  for (let t = 0; t < churnThreads; t++) yield* issueChurnThread(`churn-${t}`)
  const revoked = []
  for (let i = 0; i < revokedCount; i++) {
    const credential = yield* registry.issue({ threadId: `gone-${i % 100}`, providerInstanceId: `p${i}` })
    yield* registry.revoke(credential.credentialId)
    revoked.push(tokenOf(credential))
  }
  send({ type: "tokens", kind: "revoked", tokens: revoked })
  const live = (yield* registry.list).length
  const heapStart = heapAfterGc()

  // Background churn: a churned thread's tokens go stale at once; the
  // worker learns the new ones a moment later, so it sees both 200 and 401.
  let churned = 0
  const churn = Effect.gen(function*() {
    for (let i = 0;; i++) {
      yield* Effect.sleep(10)
      const threadId = `churn-${i % churnThreads}`
      churned += yield* registry.revokeThread(threadId)
      yield* issueChurnThread(threadId)
    }
  })
  const report = yield* Effect.raceFirst(
    Effect.callback<Report>((resume) => {
      worker.on("message", (message: FromClient) => {
        if (message.type === "report") return resume(Effect.succeed(message))
        const elapsed = message.elapsedSeconds
        console.error(
          `load: ${elapsed.toFixed(0)} of ${seconds} s, ${message.requests.toLocaleString("en-US")} requests ` +
            `(${Math.round(message.requests / elapsed).toLocaleString("en-US")}/s), ` +
            `${message.unexpected} unexpected, ${message.fiveXx} 5xx, ${churned.toLocaleString("en-US")} credentials churned`
        )
      })
      worker.once("error", (error) => resume(Effect.die(error)))
    }),
    Effect.andThen(churn, Effect.never)
  )
  const liveEnd = (yield* registry.list).length
  const heapEnd = heapAfterGc()
  yield* Effect.promise(() => worker.terminate())
  yield* Scope.close(scope, Exit.void)

  const fiveXx = Object.entries(report.statuses).filter(([status]) => Number(status) >= 500).reduce((n, [, c]) => n + c, 0)
  const grew = (heapEnd - heapStart) / heapStart
  console.log(JSON.stringify(
    {
      seconds,
      connections,
      liveCredentials: { start: live, end: liveEnd },
      requests: report.requests,
      requestsPerSecond: Math.round(report.requests / seconds),
      statuses: report.statuses,
      unexpected: report.unexpected.length,
      unexpectedSamples: report.unexpected,
      fiveXx,
      latencyMillis: report.latencies,
      churnedCredentials: churned,
      logLines,
      heap: { start: mb(heapStart), end: mb(heapEnd), growth: `${(grew * 100).toFixed(1)}%`, gc: "gc" in globalThis }
    },
    null,
    2
  ))
  const failures = [
    report.unexpected.length > 0 && "unexpected statuses",
    fiveXx > 0 && "5xx responses",
    grew > 0.25 && "heap grew by more than 25%"
  ].filter(Boolean)
  const summary = `${report.requests.toLocaleString("en-US")} requests in ${seconds} s ` +
    `(${Math.round(report.requests / seconds).toLocaleString("en-US")}/s), ${report.unexpected.length} unexpected, ` +
    `${fiveXx} 5xx, p99 ${report.latencies.p99} ms, heap ${grew >= 0 ? "+" : ""}${(grew * 100).toFixed(1)}%`
  console.error(failures.length > 0 ? `FAIL: ${failures.join(", ")}; ${summary}` : `PASS: ${summary}`)
  if (failures.length > 0) process.exitCode = 1
})

// The registry warns once per revoked credential whose token is refused, and
// the load presents thousands: count the log lines instead of printing them,
// so stdout stays the JSON alone.
const logLines: Record<string, number> = {}
const countingLogger = Logger.make((options) => {
  logLines[options.logLevel] = (logLines[options.logLevel] ?? 0) + 1
})

if (isMainThread) {
  Effect.runPromise(server.pipe(Effect.provide(Logger.layer([countingLogger])))).catch((error) => {
    console.error(error)
    process.exitCode = 1
  })
} else {
  client((workerData as Settings).port).catch((error) => {
    console.error(error)
    process.exit(1)
  })
}
