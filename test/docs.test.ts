/**
 * No snippet can rot: every code block of README.md and docs/*.md is a file
 * under examples/ (checked byte for byte) or a shell block of commands, and
 * every example runs, as its own process the way `npx tsx` runs it, and exits
 * 0 by itself within 30 s. tsc typechecks the same files (tsconfig includes
 * examples/), so a block in the docs is code that compiles and runs today.
 *
 * An example that cannot run alone (the demo's child process, which its
 * parent drives) starts with the line `// example: not-run`. Each example
 * gets a throwaway redis-server of its own, as `REDIS_URL`, so the Redis
 * examples run like the rest and none can see another's keys.
 */
import { spawn } from "node:child_process"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { join, relative } from "node:path"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import * as BenchDocs from "../bench/docs.ts"
import type { Results } from "../bench/report.ts"
import { BearerToken } from "../src/index.ts"
import { check, codeBlocks } from "./support/docBlocks.ts"
import { startRedisServer } from "./support/redis.ts"

const root = fileURLToPath(new URL("..", import.meta.url))
const posix = (path: string) => path.split("\\").join("/")

const documents = [
  "README.md",
  ...(existsSync(join(root, "docs"))
    ? readdirSync(join(root, "docs")).filter((name) => name.endsWith(".md")).sort().map((name) => `docs/${name}`)
    : [])
]

const readExample = (path: string): string | undefined => {
  const file = join(root, path)
  return existsSync(file) ? readFileSync(file, "utf8") : undefined
}

const examples = readdirSync(join(root, "examples"), { recursive: true, encoding: "utf8" })
  .map((name) => posix(join("examples", name)))
  .filter((path) => path.endsWith(".ts"))
  .sort()

const notRun = (path: string) => readFileSync(join(root, path), "utf8").split("\n", 1)[0]!.startsWith("// example: not-run")

describe("the docs checker", () => {
  const files: Record<string, string> = { "examples/a.ts": "const a = 1\n" }
  const read = (path: string) => files[path]

  it("accepts a block equal to its example and a block of commands", () => {
    const markdown = [
      "<!-- example: examples/a.ts -->",
      "```ts",
      "const a = 1",
      "```",
      "",
      "```sh",
      "# set up",
      "npm install && npm start",
      "LOAD_SECONDS=5 npm run load",
      "```"
    ].join("\n")
    assert.deepStrictEqual(check(markdown, read), [])
    assert.deepStrictEqual(codeBlocks(markdown).map((b) => [b.lang, b.example]), [["ts", "examples/a.ts"], [
      "sh",
      undefined
    ]])
  })

  it("reports a block that differs, lacks a marker or a language, or names a missing file", () => {
    const markdown = [
      "<!-- example: examples/a.ts -->",
      "```ts",
      "const a = 2",
      "```",
      "```ts",
      "const b = 1",
      "```",
      "```",
      "text",
      "```",
      "<!-- example: examples/gone.ts -->",
      "```ts",
      "```",
      "<!-- example: ../src/index.ts -->",
      "```ts",
      "```",
      "<!-- example: examples/a.ts -->",
      "",
      "no block here"
    ].join("\n")
    assert.deepStrictEqual(check(markdown, read).map((v) => [v.line, v.problem]), [
      [2, "the block differs from examples/a.ts"],
      [5, "a ts block without an <!-- example: examples/<path> --> line above it"],
      [8, "a code block without a language"],
      [12, "the marker names examples/gone.ts, which does not exist"],
      [15, "the marker names ../src/index.ts, not a file under examples/"],
      [17, "the marker for examples/a.ts has no code block under it"]
    ])
  })

  it("reports code in a shell block", () => {
    const markdown = ["```bash", "npm test", "const token = process.env.TOKEN", "```"].join("\n")
    assert.deepStrictEqual(check(markdown, read).map((v) => v.problem), [
      "a bash block holds something that is not a command: \"const token = process.env.TOKEN\""
    ])
  })
})

describe("README.md and docs/*.md", () => {
  it.each(documents)("%s: every code block is an example file or a command", (document) => {
    const violations = check(readFileSync(join(root, document), "utf8"), readExample)
    assert.deepStrictEqual(violations.map((v) => `${document}:${v.line}: ${v.problem}`), [])
  })
})

describe("docs/benchmarks.md", () => {
  it("shows the figures of bench/results.json (npm run bench:docs rewrites them)", () => {
    const page = readFileSync(join(root, "docs", "benchmarks.md"), "utf8")
    const results = JSON.parse(readFileSync(join(root, "bench", "results.json"), "utf8")) as Results
    assert.strictEqual(page, BenchDocs.splice(page, results), "run npm run bench:docs")
    // What changed between runs belongs in commit messages, not on the page.
    assert.notInclude(page, results.commit)
  })
})

/** At most this many examples run at once: the machine is shared, and each is a Node process plus esbuild. */
const concurrency = 2
const exampleTimeoutMillis = 30_000

let running = 0
const waiting: Array<() => void> = []
const withSlot = async <A>(run: () => Promise<A>): Promise<A> => {
  if (running >= concurrency) await new Promise<void>((resolve) => waiting.push(resolve))
  running++
  try {
    return await run()
  } finally {
    running--
    waiting.shift()?.()
  }
}

interface Run {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly timedOut: boolean
  readonly stdout: string
  readonly stderr: string
}

const runExample = (path: string, env: NodeJS.ProcessEnv): Promise<Run> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", path], { cwd: root, env, stdio: "pipe" })
    let stdout = ""
    let stderr = ""
    let timedOut = false
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
    const timer = setTimeout(() => {
      timedOut = true
      child.kill("SIGKILL")
    }, exampleTimeoutMillis)
    child.once("error", reject)
    child.once("close", (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, timedOut, stdout, stderr })
    })
  })

const runnable = examples.filter((path) => !notRun(path))

describe("examples", () => {
  it("there are examples to run", () => {
    assert.include(runnable, "examples/quickstart.ts")
  })

  const timeout = exampleTimeoutMillis * (Math.ceil(runnable.length / concurrency) + 1)

  it.concurrent.each(runnable)("%s runs and exits 0 by itself", async (path) => {
    const run = await withSlot(async () => {
      const redis = await startRedisServer()
      try {
        return await runExample(path, { ...process.env, REDIS_URL: redis.url })
      } finally {
        await redis.stop()
      }
    })
    const where = `${relative(root, join(root, path))}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`
    assert.isFalse(run.timedOut, `still running after ${exampleTimeoutMillis / 1000} s: ${where}`)
    assert.strictEqual(run.code, 0, `exit ${run.code ?? run.signal}: ${where}`)
    // Examples are read and copied: none may print a token.
    assert.notMatch(run.stdout + run.stderr, BearerToken.pattern, where)
  }, timeout)
})
