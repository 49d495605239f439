/**
 * `npm run load` is not part of the suite (a minute of load); this runs the
 * very script on a short, small load, so that its progress lines, its JSON
 * and its verdict keep working.
 */
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"

const root = fileURLToPath(new URL("..", import.meta.url))

const load = (args: ReadonlyArray<string>) =>
  new Promise<{ readonly code: number; readonly stdout: string; readonly stderr: string }>((resolve) =>
    execFile(
      process.execPath,
      ["--expose-gc", "--import", "tsx", "scripts/load.ts", ...args],
      { cwd: root, timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error === null ? 0 : Number(error.code ?? 1), stdout, stderr })
    )
  )

describe("npm run load", () => {
  it("prints progress while it runs, then its JSON and a one-line verdict", async () => {
    const run = await load(["--seconds=2", "--connections=4", "--progress-seconds=0.5"])
    assert.strictEqual(run.code, 0, run.stderr)
    const lines = run.stderr.trim().split("\n")
    const progress = lines.filter((line) => /^load: \d+ of 2 s, [\d,]+ requests \([\d,]+\/s\), 0 unexpected, 0 5xx/.test(line))
    assert.isAtLeast(progress.length, 2, run.stderr)
    assert.match(lines.at(-1)!, /^PASS: [\d,]+ requests in 2 s \([\d,]+\/s\), 0 unexpected, 0 5xx, p99 [\d.]+ ms, heap [+-][\d.]+%$/)
    const report = JSON.parse(run.stdout) as { requests: number; unexpected: number; fiveXx: number }
    assert.isAbove(report.requests, 0)
    assert.strictEqual(report.unexpected + report.fiveXx, 0)
  }, 70_000)

  it("--help prints the flags and runs nothing; an unknown flag is refused", async () => {
    const help = await load(["--help"])
    assert.strictEqual(help.code, 0)
    for (const flag of ["--seconds=", "--connections=", "--progress-seconds="]) assert.include(help.stdout, flag)
    const bad = await load(["--second=2"])
    assert.strictEqual(bad.code, 2)
    assert.include(bad.stderr, "unknown argument \"--second=2\"")
  })
})
