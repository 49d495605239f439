import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { execFile, spawn, spawnSync } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs"
import { availableParallelism, tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { maskOf, pinApart } from "../bench/cpus.ts"
import type { Results } from "../bench/report.ts"
import { execArgv } from "../bench/runtime.ts"

const root = fileURLToPath(new URL("..", import.meta.url))

/** Runs bench/run.ts as `npm run bench` does, with `args`. */
const bench = (args: ReadonlyArray<string>, timeout: number) =>
  new Promise<string>((resolve, reject) =>
    execFile(
      process.execPath,
      ["--expose-gc", ...execArgv, "bench/run.ts", ...args],
      { cwd: root, timeout },
      (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout))
    )
  )

// The benchmark suite is kept out of `npm test` (slow and noisy); this runs the
// very script `npm run bench` runs, on tiny sizes, so that it never rots.
describe("npm run bench", () => {
  it("runs the sources as the built package runs: Node's type transform, the same flags as its child processes", () => {
    const scripts = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts
    for (const name of ["bench", "bench:compare"]) {
      assert.include(scripts[name], execArgv.join(" "), name)
      assert.notInclude(scripts[name], "tsx", name)
    }
  })

  it("--help prints the flags and runs nothing", async () => {
    const started = Date.now()
    const stdout = await bench(["--help"], 20_000)
    for (const flag of ["--smoke", "--only=", "--sizes=", "--out="]) assert.include(stdout, flag)
    assert.notInclude(stdout, "| goal |")
    assert.isBelow(Date.now() - started, 20_000)
  })

  it("--smoke without --out leaves bench/results.json alone", async () => {
    const results = join(root, "bench", "results.json")
    const before = { text: readFileSync(results, "utf8"), mtime: statSync(results).mtimeMs }
    const stdout = await bench(["--smoke", "--only=issue"], 30_000)
    assert.include(stdout, "| goal |")
    assert.strictEqual(statSync(results).mtimeMs, before.mtime)
    assert.strictEqual(readFileSync(results, "utf8"), before.text)
  }, 40_000)

  it("runs every measurement on tiny sizes and writes the results", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bench-smoke-"))
    try {
      const out = join(dir, "results.json")
      const stdout = await new Promise<string>((resolve, reject) =>
        execFile(
          process.execPath,
          ["--expose-gc", ...execArgv, "bench/run.ts", "--smoke", `--out=${out}`],
          { cwd: root, timeout: 50_000 },
          (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout))
        )
      )
      const results = JSON.parse(readFileSync(out, "utf8")) as Results
      assert.deepStrictEqual(results.resolve?.map((r) => r.size), [1000, 10000])
      for (const r of results.resolve ?? []) {
        assert.isTrue(r.alone.opsPerSecond > 0 && Number.isFinite(r.alone.opsPerSecond))
        for (const draw of [r.active, r.uniform]) {
          for (const ops of Object.values(draw.opsPerSecond)) assert.isTrue(ops > 0 && Number.isFinite(ops))
          assert.isTrue(draw.ratios.floor > 0)
        }
      }
      assert.deepStrictEqual(results.flatness?.sizes, [1000, 10000])
      for (const t of results.flatness!.throughput) assert.isTrue(t.opsPerSecond > 0 && t.samples.length === 2)
      assert.isTrue(results.flatness!.spread > 0 && results.flatness!.spread <= 1)
      assert.include(stdout, "registries side by side")
      assert.isTrue(results.issue!.issuesPerSecond > 0)
      assert.isTrue(results.issue!.untracedIssuesPerSecond > 0)
      assert.deepStrictEqual(results.issue!.revokeThread.map((r) => r.credentialsPerThread), [1, 100])
      assert.isTrue(results.memory!.collected)
      assert.isTrue(results.memory!.bytesPerCredential > 0)
      assert.strictEqual(results.sweep!.reclaimed, results.sweep!.size)
      assert.isTrue(results.guard!.withGuard > 0 && results.guard!.withoutGuard > 0)
      assert.strictEqual(results.guard!.pinned, canPin)
      // Each stack's lookup and floor routes ran (a refused lookup answers 401, which fails the run).
      assert.deepStrictEqual(results.guard!.guards.map((g) => g.lookupCpuMicrosPerRequest! > 0), [true, true, true])
      assert.deepStrictEqual(results.guard!.guards.map((g) => g.floorCpuMicrosPerRequest! > 0), [true, true, true])
      assert.strictEqual(stdout.split("the registry lookup alone (no guard)").length - 1, 3)
      // Timed in place on the two stacks whose routes are plain functions.
      assert.deepStrictEqual(
        results.guard!.guards.map((g) => g.inPlace !== undefined && g.inPlace.registryNanos > 0 && g.inPlace.floorNanos > 0),
        [false, true, true]
      )
      assert.strictEqual(stdout.split("timed in place, in turn").length - 1, 2)
      assert.strictEqual(stdout.split("the floor's lookup (one SHA-256, one plain Map read and write)").length - 1, 3)
      // One goal per requirement of the issue, each printed in the table.
      assert.strictEqual(results.goals.length, 16)
      for (const goal of results.goals) assert.include(stdout, goal.goal)
      // The tokens the bench minted never reach its output.
      assert.notMatch(stdout, /mcpsr_[A-Za-z0-9_-]{49}/)
      assert.notMatch(readFileSync(out, "utf8"), /mcpsr_[A-Za-z0-9_-]{49}/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})

/** Runs bench/compare.ts as `npm run bench:compare` does, with `args`. */
const compare = (args: ReadonlyArray<string>, timeout: number) =>
  new Promise<{ readonly code: number; readonly stdout: string }>((resolve) =>
    execFile(
      process.execPath,
      ["--expose-gc", ...execArgv, "bench/compare.ts", ...args],
      { cwd: root, timeout },
      (error, stdout) => resolve({ code: error === null ? 0 : Number(error.code ?? 1), stdout })
    )
  )

describe("npm run bench:compare", () => {
  it("--help, or no --base, prints the flags and runs nothing", async () => {
    const help = await compare(["--help"], 20_000)
    assert.strictEqual(help.code, 0)
    for (const flag of ["--base=", "--sizes=", "--draws="]) assert.include(help.stdout, flag)
    const missing = await compare([], 20_000)
    assert.strictEqual(missing.code, 2)
    assert.include(missing.stdout, "--base=")
  }, 30_000)

  it("times this tree beside a commit in one run, and cleans up after itself", async () => {
    const { code, stdout } = await compare(
      ["--base=HEAD", "--sizes=1e3", "--draws=active", "--rounds=2", "--warmup-ms=20", "--batch-ms=10"],
      50_000
    )
    assert.strictEqual(code, 0)
    const row = stdout.split("\n").find((line) => line.startsWith("| 1e3, active |"))
    assert.isDefined(row)
    const ratios = [...row!.matchAll(/([\d.]+)x/g)].map((m) => Number(m[1]))
    assert.strictEqual(ratios.length, 4)
    for (const ratio of ratios) assert.isTrue(ratio > 0 && Number.isFinite(ratio))
    assert.deepStrictEqual(readdirSync(join(root, "bench")).filter((name) => name.startsWith(".compare-")), [])
  }, 60_000)
})

describe("the redis family's replica verdict", () => {
  it("is judged only where the machine had room, and names the cores of the machine that ran it", async () => {
    const { replicaVerdict } = await import("../bench/redis.ts")
    const replicas = { one: 20_000, two: 34_000, ratio: 1.7, machineBusyWithOne: 0.4, redisCores: 0.3 }
    assert.strictEqual(replicaVerdict(replicas, 8), "met")
    assert.strictEqual(replicaVerdict({ ...replicas, ratio: 1.2 }, 8), "not met")
    // The page renders a committed run on any machine: the count is the run's.
    assert.include(replicaVerdict({ ...replicas, machineBusyWithOne: 0.85 }, 2), "not judged: one replica's run kept 85% of the 2 cores busy")
    assert.include(replicaVerdict({ ...replicas, redisCores: 0.95 }, 8), "not judged: Redis was the bottleneck")
  })
})

// Where the bench can pin (two CPUs it may use, and util-linux's taskset), it must.
const canPin = availableParallelism() >= 2 && spawnSync("taskset", ["-V"]).status === 0

describe("the guard family's CPU pinning", () => {
  it.effect("pins nothing, and says so, for a load generator that has exited", () =>
    Effect.gen(function*() {
      const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" })
      yield* Effect.callback<void>((resume) => {
        child.once("exit", () => resume(Effect.void))
      })
      const before = canPin ? maskOf(process.pid) : undefined
      assert.isFalse(yield* Effect.scoped(pinApart(child)))
      // Refused half-way, the bench keeps its CPUs.
      if (canPin) assert.strictEqual(maskOf(process.pid), before)
    }))

  it.effect("pins the server and the load generator apart for the scope, then gives the server its CPUs back", () =>
    Effect.gen(function*() {
      const child = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { stdio: "ignore" })
      yield* Effect.addFinalizer(() => Effect.sync(() => child.kill()))
      const before = canPin ? maskOf(process.pid) : undefined
      const allowed = BigInt(`0x${before ?? "0"}`)
      const pinned = yield* Effect.scoped(Effect.gen(function*() {
        const pinned = yield* pinApart(child)
        if (pinned) {
          // One CPU each, two different ones, both of those the bench may use.
          const own = BigInt(`0x${maskOf(process.pid)}`)
          const childs = BigInt(`0x${maskOf(child.pid!)}`)
          for (const mask of [own, childs]) assert.isTrue(mask !== 0n && (mask & (mask - 1n)) === 0n && (mask & allowed) === mask)
          assert.notStrictEqual(own, childs)
          // The lower CPU is the server's.
          assert.isTrue(own < childs)
        }
        return pinned
      }))
      // CI's machine has two CPUs and taskset: there the runs must be pinned.
      assert.strictEqual(pinned, canPin)
      if (canPin) assert.strictEqual(maskOf(process.pid), before)
    }).pipe(Effect.scoped))
})
