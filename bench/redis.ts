/**
 * The `redis` family: what the Redis store costs, each figure side by side in
 * one run against a throwaway `redis-server` this module starts.
 *
 * - resolve through the Redis store vs the floor of one bare `EVALSHA` of a
 *   trivial script on the same connection, at 1 and at 64 in flight;
 * - guarded HTTP req/s with the registry on Redis vs in memory, 16 connections;
 * - two replica processes vs one on the same Redis (load on each);
 * - Redis memory per live credential, from `INFO memory`.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeRedis from "@effect/platform-node/NodeRedis"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redis from "effect/persistence/Redis"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServer from "effect/http/HttpServer"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import { type ChildProcess, fork } from "node:child_process"
import { createServer } from "node:http"
import { cpus } from "node:os"
import { fileURLToPath } from "node:url"
import * as McpBearerAuth from "../src/McpBearerAuth.ts"
import * as McpSessionRegistry from "../src/McpSessionRegistry.ts"
import { startRedisServer } from "../test/support/redis.ts"
import { interleaved, median, type Timing } from "./harness.ts"
import type { LoadRequest } from "./load.ts"
import { load, loadGenerator } from "./loadGenerator.ts"
import { optionsFor, populate } from "./population.ts"
import { execArgv } from "./runtime.ts"

/** What the family found. */
export interface RedisResult {
  readonly resolve: ReadonlyArray<{
    readonly inFlight: number
    readonly store: number
    readonly floor: number
    /** `store / floor`; goal >= 0.7. */
    readonly ratio: number
  }>
  readonly guard: {
    readonly connections: number
    readonly redis: number
    readonly memory: number
    /** `redis / memory`; goal >= 0.6. */
    readonly ratio: number
  }
  readonly replicas: {
    readonly one: number
    readonly two: number
    /** `two / one`; goal >= 1.6 while Redis is not the bottleneck. */
    readonly ratio: number
    /**
     * The share of the machine's CPU time that was busy while one replica
     * ran, and the cores Redis used while two did (medians of the rounds).
     * The goal assumes room to scale into: two replicas at 1.6x need 1.6x
     * the CPU one used, and Redis short of its core. Without that room the
     * ratio shows the machine, not the store, and is reported unjudged.
     */
    readonly machineBusyWithOne: number
    readonly redisCores: number
  }
  readonly memory: {
    readonly credentials: number
    /** Goal <= 600. */
    readonly bytesPerCredential: number
  }
}

const trivial = Redis.script(() => [], { numberOfKeys: 0, lua: "return 1" }).withReturnType<number>()

const replicaProcess = (url: string, keyPrefix: string) =>
  Effect.acquireRelease(
    Effect.callback<{ readonly child: ChildProcess; readonly port: number }, Error>((resume) => {
      const child = fork(fileURLToPath(new URL("./redisReplica.ts", import.meta.url)), [], {
        execArgv: [...execArgv],
        env: { ...process.env, REDIS_URL: url, KEY_PREFIX: keyPrefix },
        stdio: ["ignore", "inherit", "inherit", "ipc"]
      })
      child.once("message", (message: { readonly port: number }) => resume(Effect.succeed({ child, port: message.port })))
      child.once("exit", (code) => resume(Effect.fail(new Error(`replica exited with ${code}`))))
    }),
    ({ child }) => Effect.sync(() => child.kill())
  )

const Guarded = HttpRouter.add("GET", "/guarded", Effect.succeed(HttpServerResponse.text("ok"))).pipe(
  Layer.provide(McpBearerAuth.layer())
)

const guardedServer = <E>(registry: Layer.Layer<McpSessionRegistry.McpSessionRegistry, E>) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(
      HttpRouter.serve(Guarded, { disableLogger: true, disableListenLog: true }).pipe(
        Layer.provideMerge(NodeHttpServer.layerServer(createServer, { host: "127.0.0.1", port: 0 })),
        Layer.provideMerge(registry)
      )
    )
    const server = Context.get(context, HttpServer.HttpServer)
    if (server.address._tag === "UnixPathAddress") throw new Error("expected a TCP address")
    return { url: `http://127.0.0.1:${server.address.port}/guarded`, registry: Context.get(context, McpSessionRegistry.McpSessionRegistry) }
  })

export const measure = (options: {
  readonly timing: Timing
  readonly live: number
  readonly memoryCredentials: number
  readonly connections: number
  readonly seconds: number
  readonly rounds: number
  readonly amount?: number | undefined
}): Effect.Effect<RedisResult, unknown> =>
  Effect.scoped(Effect.gen(function*() {
    const server = yield* Effect.acquireRelease(
      Effect.promise(() => startRedisServer()),
      (s) => Effect.promise(() => s.stop())
    )
    const connection = yield* Layer.build(NodeRedis.layer({ url: server.url }))
    const redis = Context.get(connection, Redis.Redis)
    const registry = yield* McpSessionRegistry.makeRedis({ ...optionsFor(options.live), keyPrefix: "bench" }).pipe(
      Effect.provide(connection)
    )
    const tokens = yield* populate(registry, options.live)
    // The floor: one bare EVALSHA of a trivial script, sent on the same connection the store uses.
    const floorSha = yield* redis.send<string>("SCRIPT", "LOAD", trivial.lua)
    const floorEval = () => redis.send("EVALSHA", floorSha, "0")

    // 1. resolve vs a bare EVALSHA, on the same connection, 1 and 64 in flight.
    const resolve: Array<RedisResult["resolve"][number]> = []
    for (const inFlight of [1, 64]) {
      const run = (f: (i: number) => Effect.Effect<unknown, unknown>) => (from: number, ops: number) =>
        Effect.forEach(Array.from({ length: ops }, (_, k) => from + k), f, { concurrency: inFlight, discard: true })
      const result = yield* interleaved([
        { name: "store", run: run((i) => registry.resolve(tokens[i % tokens.length]!)) },
        { name: "floor", run: run(() => floorEval()) }
      ], options.timing)
      const store = result["store"]!.opsPerSecond
      const floor = result["floor"]!.opsPerSecond
      resolve.push({ inFlight, store, floor, ratio: store / floor })
    }

    // 2. guarded HTTP on Redis vs in memory, in alternation.
    const onRedis = yield* guardedServer(Layer.succeed(McpSessionRegistry.McpSessionRegistry, registry))
    const inMemory = yield* guardedServer(McpSessionRegistry.layer(optionsFor(options.live)))
    const memoryTokens = yield* populate(inMemory.registry, options.live)
    const generator = yield* loadGenerator
    const request = (url: string, list: ReadonlyArray<string>, connections = options.connections): LoadRequest => ({
      url,
      tokens: list,
      connections,
      seconds: options.seconds,
      amount: options.amount
    })
    const redisRuns: Array<number> = []
    const memoryRuns: Array<number> = []
    for (let round = 0; round < options.rounds; round++) {
      const order = round % 2 === 0 ? ["redis", "memory"] : ["memory", "redis"]
      for (const which of order) {
        const outcome = yield* load(
          generator,
          which === "redis" ? request(onRedis.url, tokens) : request(inMemory.url, memoryTokens)
        )
        if (outcome.non2xx > 0 || outcome.errors > 0) throw new Error(`guard on ${which}: ${outcome.non2xx} non-2xx`)
        ;(which === "redis" ? redisRuns : memoryRuns).push(outcome.requestsPerSecond)
      }
    }
    const guard = {
      connections: options.connections,
      redis: median(redisRuns),
      memory: median(memoryRuns),
      ratio: median(redisRuns) / median(memoryRuns)
    }

    // 3. two replica processes vs one, each loaded by its own generator.
    const first = yield* replicaProcess(server.url, "bench")
    const second = yield* replicaProcess(server.url, "bench")
    const other = yield* loadGenerator
    const url = (port: number) => `http://127.0.0.1:${port}/guarded`
    const redisCpuSeconds = Effect.map(redis.send<string>("INFO", "cpu"), (info) =>
      Number(/used_cpu_user:([\d.]+)/.exec(info)![1]) + Number(/used_cpu_sys:([\d.]+)/.exec(info)![1]))
    const ones: Array<number> = []
    const twos: Array<number> = []
    const busy: Array<number> = []
    const redisCores: Array<number> = []
    for (let round = 0; round < options.rounds; round++) {
      const oneBefore = machineTimes()
      ones.push((yield* load(generator, request(url(first.port), tokens))).requestsPerSecond)
      const oneAfter = machineTimes()
      busy.push(1 - (oneAfter.idle - oneBefore.idle) / Math.max(oneAfter.total - oneBefore.total, 1))
      const redisBefore = yield* redisCpuSeconds
      const started = performance.now()
      const both = yield* Effect.all([
        load(generator, request(url(first.port), tokens)),
        load(other, request(url(second.port), tokens))
      ], { concurrency: 2 })
      const wallSeconds = (performance.now() - started) / 1000
      const redisAfter = yield* redisCpuSeconds
      twos.push(both[0].requestsPerSecond + both[1].requestsPerSecond)
      redisCores.push((redisAfter - redisBefore) / wallSeconds)
    }
    const replicas = {
      one: median(ones),
      two: median(twos),
      ratio: median(twos) / median(ones),
      machineBusyWithOne: median(busy),
      redisCores: median(redisCores)
    }

    // 4. Redis memory per live credential: a prefix of its own, before and after.
    const usedMemory = Effect.map(
      redis.send<string>("INFO", "memory"),
      (info) => Number(/used_memory:(\d+)/.exec(info)![1])
    )
    const sized = yield* McpSessionRegistry.makeRedis({
      ...optionsFor(options.memoryCredentials),
      keyPrefix: "memory"
    }).pipe(Effect.provide(connection))
    const before = yield* usedMemory
    yield* Effect.forEach(
      Array.from({ length: options.memoryCredentials }, (_, i) => i),
      (i) => sized.issue({ threadId: `thread-${i >> 2}`, providerInstanceId: `p${i & 3}` }),
      { concurrency: 64, discard: true }
    )
    const after = yield* usedMemory
    const memory = {
      credentials: options.memoryCredentials,
      bytesPerCredential: (after - before) / options.memoryCredentials
    }
    return { resolve, guard, replicas, memory }
  }))

// Every core's CPU time so far, busy and idle, in milliseconds.
const machineTimes = (): { readonly idle: number; readonly total: number } => {
  let idle = 0
  let total = 0
  for (const cpu of cpus()) {
    idle += cpu.times.idle
    total += cpu.times.user + cpu.times.nice + cpu.times.sys + cpu.times.idle + cpu.times.irq
  }
  return { idle, total }
}

/** The replica goal: two replicas serve this many times what one does. */
export const replicaGoal = 1.6

/** Redis past this share of its one core is the bottleneck the goal excludes. */
export const redisSaturated = 0.9

/**
 * The verdict on the replica goal: judged only where the machine had the
 * CPU that 1.6x of one replica's load needs, and Redis had not filled its
 * core. `cores`: the cores of the machine that ran it.
 */
export const replicaVerdict = (replicas: RedisResult["replicas"], cores: number): string =>
  replicas.machineBusyWithOne * replicaGoal > 1
    ? `not judged: one replica's run kept ${fmt(replicas.machineBusyWithOne * 100)}% of the ${cores} cores busy, ` +
      `and ${replicaGoal}x that needs more`
    : replicas.redisCores >= redisSaturated
    ? `not judged: Redis was the bottleneck (${fmt(replicas.redisCores, 2)} of its core)`
    : replicas.ratio >= replicaGoal
    ? "met"
    : "not met"

const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })

/** The family as Markdown tables; `cores`: the cores of the machine that ran it. */
export const render = (result: RedisResult, cores: number): string =>
  [
    "### Redis store",
    "",
    "| Figure | Redis | Baseline | Ratio | Goal |",
    "| --- | ---: | ---: | ---: | --- |",
    ...result.resolve.map((r) =>
      `| resolve, ${r.inFlight} in flight (ops/s) | ${fmt(r.store)} | ${fmt(r.floor)} (bare EVALSHA) | ${fmt(r.ratio, 2)}x | >= 0.7x |`
    ),
    `| guarded HTTP, ${result.guard.connections} connections (req/s) | ${fmt(result.guard.redis)} | ${
      fmt(result.guard.memory)
    } (memory store) | ${fmt(result.guard.ratio, 2)}x | >= 0.6x |`,
    `| two replica processes vs one (req/s) | ${fmt(result.replicas.two)} | ${fmt(result.replicas.one)} (one) | ${
      fmt(result.replicas.ratio, 2)
    }x | >= ${replicaGoal}x while Redis is not the bottleneck: ${replicaVerdict(result.replicas, cores)} |`,
    `| Redis memory per live credential, ${fmt(result.memory.credentials)} credentials | ${
      fmt(result.memory.bytesPerCredential)
    } B | | | <= 600 B |`
  ].join("\n")
