/**
 * `npm run bench`: every measurement of issue 5 in one process and one run,
 * printed as Markdown tables and written to `bench/results.json`.
 *
 * `--help` prints the flags (`usage` below) and exits.
 *
 * Run it with `--expose-gc` (the npm script does): the memory figure needs
 * full collections, and every timed batch starts after one.
 */
import * as Effect from "effect/Effect"
import { writeFileSync } from "node:fs"
import { cpus } from "node:os"
import * as BenchDocs from "./docs.ts"
import * as Flatness from "./flatness.ts"
import * as Guard from "./guard.ts"
import { canCollectGarbage, type Timing } from "./harness.ts"
import * as Issue from "./issue.ts"
import * as Memory from "./memory.ts"
import * as RedisFamily from "./redis.ts"
import * as Report from "./report.ts"
import * as Resolve from "./resolve.ts"
import * as Sweep from "./sweep.ts"

const measurements = ["resolve", "issue", "memory", "sweep", "guard", "redis"] as const
type Measurement = typeof measurements[number]

const defaultOut = "bench/results.json"

/** What `--help` prints. */
const usage = `npm run bench -- [flags]: every measurement in one run, as Markdown tables and a JSON file.

  --help                     print this and exit
  --smoke                    tiny sizes and short rounds, to check the suite still runs (the figures
                             mean nothing); writes no results file unless --out is given
  --only=resolve,issue,memory,sweep,guard,redis
                             run a subset
  --sizes=1e3,1e4,1e5,1e6    live credentials for resolve
  --memory-size=1e6  --sweep-size=1e6  --guard-live=1e4  --guard-connections=16
  --revoke-credentials=20000
  --redis-live=1e4  --redis-memory-credentials=1e5   (the redis family starts its own redis-server)
  --rounds=7  --warmup-ms=300  --batch-ms=100  --guard-seconds=3  --guard-rounds=6
  --out=bench/results.json   where the JSON goes (--out=- for nowhere; default: bench/results.json,
                             or nowhere with --smoke)
`

const parseArgs = (argv: ReadonlyArray<string>): Map<string, string> => {
  const flags = new Map<string, string>()
  for (const arg of argv) {
    const match = /^--([a-z-]+)(?:=(.*))?$/.exec(arg)
    if (match === null) throw new Error(`Unknown argument ${JSON.stringify(arg)}`)
    flags.set(match[1]!, match[2] ?? "true")
  }
  return flags
}

const main = Effect.gen(function*() {
  const flags = parseArgs(process.argv.slice(2))
  if (flags.has("help")) {
    console.log(usage)
    return
  }
  const smoke = flags.get("smoke") === "true"
  const number = (name: string, normal: number, tiny: number): number => {
    const text = flags.get(name)
    if (text === undefined) return smoke ? tiny : normal
    const value = Number(text)
    if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number, not ${text}`)
    return value
  }
  const sizes = (flags.get("sizes") ?? (smoke ? "1000,10000" : "1e3,1e4,1e5,1e6")).split(",").map(Number)
  if (sizes.some((n) => !Number.isInteger(n) || n <= 0)) throw new Error(`--sizes must be whole numbers`)
  const only = new Set<Measurement>(
    (flags.get("only")?.split(",") ?? measurements).map((name) => {
      if (!(measurements as ReadonlyArray<string>).includes(name)) throw new Error(`Unknown measurement ${name}`)
      return name as Measurement
    })
  )
  const timing: Timing = {
    rounds: number("rounds", 7, 2),
    warmupMillis: number("warmup-ms", 300, 20),
    batchMillis: number("batch-ms", 100, 10)
  }
  // A smoke run's figures mean nothing, so it never overwrites the committed results by default.
  const out = flags.get("out") ?? (smoke ? "-" : defaultOut)
  if (!canCollectGarbage()) console.error("warning: run with --expose-gc; the memory figure will include garbage")

  const log = (line: string) => console.error(`[bench] ${line}`)
  const started = performance.now()
  const step = <A>(name: string, effect: Effect.Effect<A, unknown>) =>
    Effect.gen(function*() {
      const start = performance.now()
      log(`${name}...`)
      const result = yield* effect
      log(`${name} done in ${((performance.now() - start) / 1000).toFixed(1)} s`)
      return result
    })

  // The guard runs first, on a fresh heap: run after the 1e6-credential
  // measurements it read 25% where it reads 5% alone, as the server's GC then
  // works through what they left behind.
  const guard = only.has("guard")
    ? yield* step(
      "HTTP guard",
      Guard.measure({
        live: number("guard-live", 1e4, 100),
        connections: number("guard-connections", 16, 4),
        seconds: number("guard-seconds", 3, 0.5),
        rounds: number("guard-rounds", 6, 1),
        amount: smoke ? 200 : undefined
      })
    )
    : undefined

  const resolve: Array<Resolve.ResolveResult> = []
  if (only.has("resolve")) {
    for (const size of sizes) resolve.push(yield* step(`resolve at ${size}`, Resolve.measure(size, timing)))
  }
  const flatness = only.has("resolve") && sizes.length > 1
    ? yield* step(`resolve at ${sizes.join(", ")} side by side`, Flatness.measure(sizes, timing))
    : undefined
  const issue = only.has("issue")
    ? yield* step(
      "issue and revokeThread",
      Issue.measure(timing, { revokeCredentials: number("revoke-credentials", 20_000, 400), background: smoke ? 100 : 10_000 })
    )
    : undefined
  const memory = only.has("memory") ? yield* step("memory", Memory.measure(number("memory-size", 1e6, 1e4))) : undefined
  const sweep = only.has("sweep") ? yield* step("sweep", Sweep.measure(number("sweep-size", 1e6, 1e4), smoke ? 50 : 1000)) : undefined
  const redis = only.has("redis")
    ? yield* step(
      "redis",
      RedisFamily.measure({
        timing,
        live: number("redis-live", 1e4, 200),
        memoryCredentials: number("redis-memory-credentials", 1e5, 2000),
        connections: number("guard-connections", 16, 4),
        seconds: number("guard-seconds", 3, 0.5),
        rounds: number("guard-rounds", 6, 1),
        amount: smoke ? 200 : undefined
      })
    )
    : undefined
  const partial = {
    date: new Date().toISOString(),
    commit: Report.commit(),
    machine: Report.machine(),
    timing,
    resolve: only.has("resolve") ? resolve : undefined,
    flatness,
    issue,
    memory,
    sweep,
    guard,
    redis
  }
  const results: Report.Results = { ...partial, goals: Report.goals(partial) }
  console.log(Report.render(results))
  if (redis !== undefined) console.log(`\n${RedisFamily.render(redis, cpus().length)}`)
  if (out !== "-") writeFileSync(out, JSON.stringify(results, null, 2) + "\n")
  // The committed run is the one docs/benchmarks.md shows.
  if (out === defaultOut) BenchDocs.write(defaultOut)
  log(`finished in ${((performance.now() - started) / 1000).toFixed(1)} s${out === "-" ? "" : `, wrote ${out}`}`)
})

Effect.runPromise(main).then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  }
)
