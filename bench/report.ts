/**
 * The results of a run: the machine, the figures, the goals of issue 5 checked
 * against them, and the Markdown table printed to stdout and pasted into the
 * README.
 */
import { execFileSync } from "node:child_process"
import * as os from "node:os"
import type { FlatnessResult } from "./flatness.ts"
import type { GuardPair, GuardResult } from "./guard.ts"
import type { IssueResult } from "./issue.ts"
import type { MemoryResult } from "./memory.ts"
import type { ResolveResult } from "./resolve.ts"
import type { SweepResult } from "./sweep.ts"
import type { Timing } from "./harness.ts"

/** Where and on what a run happened. */
export interface Machine {
  readonly cpus: number
  readonly model: string
  readonly node: string
  readonly platform: string
  readonly totalMemoryGiB: number
}

/** Everything one run measured; a measurement left out of the run is `undefined`. */
export interface Results {
  readonly date: string
  readonly commit: string
  readonly machine: Machine
  readonly timing: Timing
  readonly resolve?: ReadonlyArray<ResolveResult> | undefined
  readonly flatness?: FlatnessResult | undefined
  readonly issue?: IssueResult | undefined
  readonly memory?: MemoryResult | undefined
  readonly sweep?: SweepResult | undefined
  readonly guard?: GuardResult | undefined
  readonly goals: ReadonlyArray<Goal>
}

/** One goal of issue 5 and whether the run met it. */
export interface Goal {
  readonly goal: string
  readonly target: string
  readonly measured: string
  readonly met: boolean
}

/** The machine this process runs on. */
export const machine = (): Machine => ({
  cpus: os.availableParallelism(),
  model: os.cpus()[0]?.model.trim() ?? "unknown",
  node: process.version,
  platform: `${os.platform()} ${os.arch()}`,
  totalMemoryGiB: Math.round(os.totalmem() / 2 ** 30)
})

/** The commit the run measured, marked `-dirty` when tracked files under src/ or bench/ had uncommitted changes. */
export const commit = (): string => {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim()
    const dirty = execFileSync("git", ["status", "--porcelain", "--untracked-files=no", "--", "src", "bench"], { encoding: "utf8" }).trim()
    return dirty === "" ? head : `${head}-dirty`
  } catch {
    return "unknown"
  }
}

const fmt = (value: number, digits = 0): string =>
  Number.isFinite(value) ? value.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }) : "n/a"
const ratio = (value: number): string => (value >= 100 ? `${fmt(value)}x` : `${fmt(value, 2)}x`)
const size = (n: number): string => (n >= 1000 && Math.log10(n) % 1 === 0 ? `1e${Math.log10(n)}` : fmt(n))

/** Checks the goals of issue 5 against whatever the run measured. */
export const goals = (results: Omit<Results, "goals">): Array<Goal> => {
  const out: Array<Goal> = []
  const resolve = results.resolve ?? []
  if (resolve.length > 0) {
    const draws = resolve.flatMap((r) => [r.active, r.uniform])
    const worstFloor = Math.min(...draws.map((d) => d.ratios.floor))
    out.push({
      goal: "resolve vs the floor, at every size (both draws)",
      target: ">= 0.70x",
      measured: `${ratio(worstFloor)} (worst)`,
      met: worstFloor >= 0.7
    })
    const worstLru = Math.min(...draws.map((d) => d.ratios.lruCache))
    out.push({
      goal: "resolve vs lru-cache, at every size (both draws)",
      target: ">= 1.00x",
      measured: `${ratio(worstLru)} (worst)`,
      met: worstLru >= 1
    })
    const spreadOf = (draw: "active" | "uniform") => {
      const ops = resolve.map((r) => r[draw].opsPerSecond.registry)
      return Math.min(...ops) / Math.max(...ops)
    }
    const aloneOps = resolve.map((r) => r.alone.opsPerSecond)
    const alone = Math.min(...aloneOps) / Math.max(...aloneOps)
    const apart = `measured one size after another: alone ${ratio(alone)}, beside the others active ${
      ratio(spreadOf("active"))
    }, uniform ${ratio(spreadOf("uniform"))}`
    const flatness = results.flatness
    out.push(
      flatness === undefined
        ? {
          goal: `resolve flat from ${size(resolve[0]!.size)} to ${size(resolve[resolve.length - 1]!.size)} (registry alone, active draw)`,
          target: "slowest >= 0.75x fastest",
          measured: `${ratio(alone)} (${apart})`,
          met: alone >= 0.75
        }
        : {
          goal: `resolve flat from ${size(flatness.sizes[0]!)} to ${
            size(flatness.sizes[flatness.sizes.length - 1]!)
          } (registries side by side, active draw)`,
          target: "slowest >= 0.75x fastest",
          measured: `${ratio(flatness.spread)} (${apart})`,
          met: flatness.spread >= 0.75
        }
    )
    // Issue 13: "the Promise registry's resolve (or the synchronous check the
    // guards use)": the better of the two counts, at every size and draw.
    const worstWithoutFiber = Math.min(
      ...draws.map((d) => Math.max(d.ratios.promiseRegistryToFloor, d.ratios.syncCheckToFloor))
    )
    out.push({
      goal: "resolve without a fiber (Promise registry or sync check) vs the floor, at every size (both draws)",
      target: ">= 0.80x",
      measured: `${ratio(worstWithoutFiber)} (worst; Promise registry ${
        ratio(Math.min(...draws.map((d) => d.ratios.promiseRegistryToFloor)))
      }, sync check ${ratio(Math.min(...draws.map((d) => d.ratios.syncCheckToFloor)))})`,
      met: worstWithoutFiber >= 0.8
    })
    const at1e4 = resolve.find((r) => r.size === 10_000)
    if (at1e4 !== undefined) {
      const naive = Math.min(at1e4.active.ratios.naive, at1e4.uniform.ratios.naive)
      out.push({
        goal: "resolve vs naive at 1e4 (both draws)",
        target: ">= 100x",
        measured: `${ratio(naive)} (worst)`,
        met: naive >= 100
      })
    }
  }
  if (results.issue !== undefined) {
    out.push({
      goal: "issue throughput",
      target: ">= 100,000/s",
      measured: `${fmt(results.issue.issuesPerSecond)}/s`,
      met: results.issue.issuesPerSecond >= 100_000
    })
  }
  if (results.memory !== undefined) {
    out.push({
      goal: `heap per live credential at ${size(results.memory.size)}`,
      target: "<= 400 B",
      measured: `${fmt(results.memory.bytesPerCredential)} B`,
      met: results.memory.collected && results.memory.bytesPerCredential <= 400
    })
  }
  if (results.sweep !== undefined) {
    out.push({
      goal: `longest event-loop stall sweeping ${size(results.sweep.size)} dead`,
      target: "<= 20 ms",
      measured: `${fmt(results.sweep.maxStallMillis, 1)} ms`,
      met: results.sweep.maxStallMillis <= 20
    })
  }
  if (results.guard !== undefined) {
    // Results written before every guard was measured hold McpBearerAuth's alone.
    const guards = results.guard.guards ?? [{ ...results.guard, guard: "McpBearerAuth" }]
    for (const g of guards) {
      out.push({
        goal: `throughput cost of ${g.guard}`,
        target: "<= 10%",
        measured: `${fmt(g.costPercent, 1)}%`,
        met: g.costPercent <= 10
      })
      if (g.cpuCostPercent !== undefined) {
        out.push({
          goal: `server CPU per request of ${g.guard}`,
          target: "<= +15%",
          measured: `${g.cpuCostPercent >= 0 ? "+" : ""}${fmt(g.cpuCostPercent, 1)}%`,
          met: g.cpuCostPercent <= 15
        })
      }
      if (g.inPlace !== undefined) {
        // Issue 13's "the synchronous check the guards use ... >= 0.8x of the
        // floor", judged where a server makes it, beside the hot-loop line above.
        out.push({
          goal: `sync check vs the floor, timed in place on ${g.stack}`,
          target: ">= 0.80x",
          measured: ratio(g.inPlace.ratio),
          met: g.inPlace.ratio >= 0.8
        })
      }
    }
  }
  return out
}

// What of the guard's CPU cost the registry lookup alone costs, on the same stack.
const lookupShare = (g: GuardPair): string => {
  const bare = g.cpuMicrosPerRequest.withoutGuard
  const signed = (micros: number) => `${micros >= 0 ? "+" : ""}${fmt(micros, 1)} µs`
  return `the registry lookup alone (no guard) ${signed(g.lookupCpuMicrosPerRequest! - bare)} of the guard's ` +
    signed(g.cpuMicrosPerRequest.withGuard - bare) +
    (g.floorCpuMicrosPerRequest === undefined
      ? ""
      : `; the floor's lookup (one SHA-256, one plain Map read and write) ${signed(g.floorCpuMicrosPerRequest - bare)}`) +
    (g.inPlace === undefined
      ? ""
      : `; timed in place, in turn: the registry lookup ${fmt(g.inPlace.registryNanos)} ns, the floor's ` +
        `${fmt(g.inPlace.floorNanos)} ns (${fmt(g.inPlace.ratio, 2)}x the floor's speed)`)
}

/** The run as Markdown tables. */
export const render = (results: Results): string => {
  const lines: Array<string> = []
  const m = results.machine
  lines.push(
    `Machine: ${m.cpus} cores, ${m.model}, ${m.totalMemoryGiB} GiB, ${m.platform}, Node ${m.node}. ` +
      `Commit ${results.commit}, ${results.date}. Median of ${results.timing.rounds} rounds ` +
      `(~${results.timing.batchMillis} ms each, after ${results.timing.warmupMillis} ms of warm-up per contender).`,
    ""
  )
  if (results.resolve !== undefined && results.resolve.length > 0) {
    lines.push(
      "| `resolve`, registry alone, active draw | ops/s |",
      "| ---: | ---: |",
      ...results.resolve.map((r) => `| ${size(r.size)} | ${fmt(r.alone.opsPerSecond)} |`),
      ""
    )
    if (results.flatness !== undefined) {
      const f = results.flatness
      lines.push(
        "| `resolve`, registries side by side, active draw | ops/s |",
        "| ---: | ---: |",
        ...f.sizes.map((n, i) => `| ${size(n)} | ${fmt(f.throughput[i]!.opsPerSecond)} |`),
        ""
      )
    }
    for (const draw of ["active", "uniform"] as const) {
      lines.push(
        `| \`resolve\`, ${draw} draw, live credentials | registry ops/s | floor ops/s | floor in Effect ops/s | lru-cache ops/s | naive ops/s | registry/floor | registry/floor in Effect | registry/lru-cache | registry/naive |`,
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
      )
      for (const r of results.resolve) {
        const o = r[draw].opsPerSecond
        const q = r[draw].ratios
        lines.push(
          `| ${size(r.size)} | ${fmt(o.registry)} | ${fmt(o.floor)} | ${fmt(o.floorInEffect)} | ${fmt(o.lruCache)} | ${
            fmt(o.naive, o.naive < 100 ? 1 : 0)
          } | ${ratio(q.floor)} | ${ratio(q.floorInEffect)} | ${ratio(q.lruCache)} | ${ratio(q.naive)} |`
        )
      }
      lines.push("")
    }
    // A results file from before this family has no such figures: leave the table out.
    if (results.resolve.some((r) => r.active.opsPerSecond.promiseRegistry !== undefined)) {
      lines.push(
        "| `resolve` without a fiber, live credentials, draw | Promise registry ops/s | sync check ops/s | floor ops/s | Promise registry/floor | sync check/floor |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |"
      )
      for (const r of results.resolve) {
        for (const draw of ["active", "uniform"] as const) {
          const o = r[draw].opsPerSecond
          const q = r[draw].ratios
          lines.push(
            `| ${size(r.size)}, ${draw} | ${fmt(o.promiseRegistry)} | ${fmt(o.syncCheck)} | ${fmt(o.floor)} | ${
              ratio(q.promiseRegistryToFloor)
            } | ${ratio(q.syncCheckToFloor)} |`
          )
        }
      }
      lines.push("")
    }
  }
  const rows: Array<[string, string]> = []
  if (results.issue !== undefined) {
    rows.push(["`issue`", `${fmt(results.issue.issuesPerSecond)} credentials/s`])
    rows.push(["`issue`, Effect tracing off", `${fmt(results.issue.untracedIssuesPerSecond)} credentials/s`])
    for (const r of results.issue.revokeThread) {
      rows.push([
        `\`revokeThread\`, thread of ${r.credentialsPerThread}`,
        `${fmt(r.microsPerCall, 1)} µs per call (${fmt(r.callsPerSecond)} calls/s)`
      ])
    }
  }
  if (results.memory !== undefined) {
    rows.push([
      `heap per live credential (${size(results.memory.size)} live)`,
      `${fmt(results.memory.bytesPerCredential)} B${results.memory.collected ? "" : " (without --expose-gc: not collected)"}`
    ])
  }
  if (results.sweep !== undefined) {
    const s = results.sweep
    rows.push([
      `sweeping ${size(s.size)} dead credentials`,
      `longest stall ${fmt(s.maxStallMillis, 1)} ms, p99 ${fmt(s.p99StallMillis, 1)} ms, ${fmt(s.sweepMillis)} ms in all; ` +
        `longest GC pause meanwhile ${fmt(s.longestGcPauseMillis, 1)} ms (${s.gcPauses} pauses); ` +
        `longest stall with no GC pause in it ${fmt(s.longestStallWithoutGcMillis, 1)} ms`
    ])
  }
  if (results.guard !== undefined) {
    const live = `${fmt(results.guard.liveCredentials)} live credentials`
    // Results written before every guard was measured hold McpBearerAuth's alone.
    const guards = results.guard.guards ?? [results.guard]
    for (const g of guards) {
      rows.push([
        results.guard.guards === undefined ? `HTTP, ${live}` : `HTTP, ${g.guard} on ${g.stack}, ${live}`,
        `${fmt(g.withoutGuard)} req/s bare, ${fmt(g.withGuard)} req/s guarded: the guard costs ${fmt(g.costPercent, 1)}% ` +
          `of throughput; server CPU ${fmt(g.cpuMicrosPerRequest.withoutGuard, 1)} µs vs ${fmt(g.cpuMicrosPerRequest.withGuard, 1)} µs ` +
          `per request (${g.cpuCostPercent >= 0 ? "+" : ""}${fmt(g.cpuCostPercent, 1)}%)` +
          (g.lookupCpuMicrosPerRequest === undefined ? "" : `; ${lookupShare(g)}`)
      ])
    }
  }
  if (rows.length > 0) {
    lines.push("| measurement | result |", "| --- | --- |", ...rows.map(([k, v]) => `| ${k} | ${v} |`), "")
  }
  if (results.goals.length > 0) {
    lines.push("| goal | target | measured | met |", "| --- | --- | --- | --- |")
    for (const g of results.goals) lines.push(`| ${g.goal} | ${g.target} | ${g.measured} | ${g.met ? "yes" : "**no**"} |`)
    lines.push("")
  }
  return lines.join("\n")
}
