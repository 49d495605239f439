/**
 * `npm run bench:compare -- --base=<rev>`: `resolve` and `touch` of this
 * tree's registry beside those of an earlier commit's, in one process.
 *
 * A performance goal of the form "stays within 5% of what it was before this
 * change" cannot be judged from two runs: on a shared machine the figures of
 * one run move by up to 2x against another's. Here both builds live in one
 * heap, are filled with the same number of credentials and timed in the same
 * interleaved rounds as the floor (`harness.ts`), so the ratios of one run
 * compare them. The base's `src/` is extracted with `git archive` into a
 * temporary directory inside this tree (`bench/.compare-*`, ignored by git),
 * so both builds resolve `effect` to the very same module; both are built
 * through `McpSessionRegistry.make`, which every commit has.
 */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import * as Contenders from "./contenders.ts"
import { type Contender, interleaved, type Timing } from "./harness.ts"
import { providers, threadOf } from "./population.ts"
import { type Draw, drawOrder } from "./resolve.ts"

const root = fileURLToPath(new URL("..", import.meta.url))

const usage = `npm run bench:compare -- --base=<rev> [flags]: resolve and touch of this tree beside <rev>'s.

  --help                 print this and exit
  --base=<rev>           the commit to compare with (required; HEAD compares the commit with itself)
  --sizes=1e4,1e5        live credentials per build
  --draws=active,uniform which tokens are presented (see docs/benchmarks.md)
  --rounds=9  --warmup-ms=300  --batch-ms=100
`

/** The part of a registry service both builds have. */
interface Build {
  readonly resolve: (token: string) => Effect.Effect<unknown, unknown>
  readonly touch: (threadId: string) => Effect.Effect<number>
  readonly issue: (request: {
    readonly threadId: string
    readonly providerInstanceId: string
  }) => Effect.Effect<{ readonly token: Redacted.Redacted<string> }, unknown>
}

/** One size and draw: ops/s per contender, and the ratios that judge it. */
export interface Comparison {
  readonly size: number
  readonly draw: Draw
  readonly opsPerSecond: Record<string, number>
  /** Each build's `resolve` over the floor, and this tree's over the base's. */
  readonly resolve: { readonly base: number; readonly head: number; readonly headToBase: number }
  /** This tree's `touch` over the base's. */
  readonly touchHeadToBase: number
}

const build = (srcDir: string) =>
  Effect.gen(function*() {
    const module = yield* Effect.promise(() => import(join(srcDir, "McpSessionRegistry.ts")))
    return (size: number) =>
      module.make({ maxCredentials: Math.max(size * 2, 1000), maxCredentialsPerThread: 1000 }) as Effect.Effect<
        Build,
        unknown,
        never
      >
  })

const fill = Effect.fnUntraced(function*(registry: Build, size: number) {
  const tokens: Array<string> = new Array(size)
  for (let i = 0; i < size; i++) {
    tokens[i] = Redacted.value((yield* registry.issue({ threadId: threadOf(i), providerInstanceId: providers[i & 3]! })).token)
  }
  return tokens
})

/** Measures one size and draw of both builds. */
export const compare = (
  builds: { readonly base: (size: number) => Effect.Effect<Build, unknown>; readonly head: (size: number) => Effect.Effect<Build, unknown> },
  size: number,
  draw: Draw,
  timing: Timing
): Effect.Effect<Comparison, unknown> =>
  Effect.scoped(Effect.gen(function*() {
    const order = drawOrder(draw, size)
    const mask = order.length - 1
    const contenders: Array<Contender> = []
    let floorTokens: ReadonlyArray<string> = []
    for (const name of ["base", "head"] as const) {
      const registry = yield* builds[name](size)
      const tokens = yield* fill(registry, size)
      floorTokens = tokens
      contenders.push({
        name: `resolve ${name}`,
        run: (from, ops) =>
          Effect.gen(function*() {
            for (let i = 0; i < ops; i++) yield* registry.resolve(tokens[order[(from + i) & mask]!]!)
          })
      }, {
        name: `touch ${name}`,
        run: (from, ops) =>
          Effect.gen(function*() {
            for (let i = 0; i < ops; i++) {
              if ((yield* registry.touch(threadOf(order[(from + i) & mask]!))) === 0) throw new Error("touched nothing")
            }
          })
      })
    }
    const floor = Contenders.floor(floorTokens)
    contenders.push({
      name: "floor",
      run: (from, ops) =>
        Effect.sync(() => {
          for (let i = 0; i < ops; i++) {
            if (floor.resolve(floorTokens[order[(from + i) & mask]!]!) === undefined) throw new Error("floor: live token refused")
          }
        })
    })
    const result = yield* interleaved(contenders, timing)
    const ops = Object.fromEntries(Object.entries(result).map(([name, t]) => [name, t.opsPerSecond]))
    return {
      size,
      draw,
      opsPerSecond: ops,
      resolve: {
        base: ops["resolve base"]! / ops["floor"]!,
        head: ops["resolve head"]! / ops["floor"]!,
        headToBase: ops["resolve head"]! / ops["resolve base"]!
      },
      touchHeadToBase: ops["touch head"]! / ops["touch base"]!
    }
  }))

/** The comparisons as one Markdown table. */
export const render = (base: string, rows: ReadonlyArray<Comparison>): string =>
  [
    `| live credentials, draw | resolve/floor, ${base} | resolve/floor, this tree | resolve, this tree/${base} | touch, this tree/${base} |`,
    "| ---: | ---: | ---: | ---: | ---: |",
    ...rows.map((r) =>
      `| ${r.size.toExponential(0).replace("+", "")}, ${r.draw} | ${r.resolve.base.toFixed(2)}x | ${r.resolve.head.toFixed(2)}x | ${
        r.resolve.headToBase.toFixed(3)
      }x | ${r.touchHeadToBase.toFixed(3)}x |`
    )
  ].join("\n")

const main = Effect.gen(function*() {
  const flags = new Map(process.argv.slice(2).map((arg) => {
    const match = /^--([a-z-]+)(?:=(.*))?$/.exec(arg)
    if (match === null) throw new Error(`Unknown argument ${JSON.stringify(arg)}`)
    return [match[1]!, match[2] ?? "true"] as const
  }))
  const base = flags.get("base")
  if (flags.has("help") || base === undefined || base === "true") {
    console.log(usage)
    if (!flags.has("help")) process.exitCode = 2
    return
  }
  const sizes = (flags.get("sizes") ?? "1e4,1e5").split(",").map(Number)
  const draws = (flags.get("draws") ?? "active,uniform").split(",") as Array<Draw>
  const timing: Timing = {
    rounds: Number(flags.get("rounds") ?? 9),
    warmupMillis: Number(flags.get("warmup-ms") ?? 300),
    batchMillis: Number(flags.get("batch-ms") ?? 100)
  }
  // Inside the tree: a copy elsewhere would load a second `effect`, whose
  // `Redacted` values this tree's cannot read.
  const dir = mkdtempSync(join(root, "bench", ".compare-"))
  try {
    const archive = execFileSync("git", ["archive", "--format=tar", base, "src"], { cwd: root, maxBuffer: 1 << 28 })
    execFileSync("tar", ["-x", "-C", dir], { input: archive })
    const builds = { base: yield* build(join(dir, "src")), head: yield* build(join(root, "src")) }
    const rows: Array<Comparison> = []
    for (const size of sizes) {
      for (const draw of draws) rows.push(yield* compare(builds, size, draw, timing))
    }
    console.log(render(base, rows))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

Effect.runPromise(main).then(() => process.exit(), (error) => {
  console.error(error)
  process.exit(1)
})
