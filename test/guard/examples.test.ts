/**
 * The Express, Hono and node:http examples, each run as its own process the
 * way `npx tsx` runs it: a real server guarded by this package's guard, and
 * the official MCP SDK client calling it. Asserts what they print: the
 * guard's 401 without a token, the tool's answer (its caller) with one.
 */
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"

const root = fileURLToPath(new URL("../..", import.meta.url))

const run = (path: string) =>
  new Promise<{ readonly code: number | null; readonly stdout: string; readonly stderr: string }>((resolve) => {
    execFile("npx", ["tsx", path], { cwd: root, timeout: 30_000 }, (error, stdout, stderr) =>
      resolve({ code: error === null ? 0 : (error as { code?: number }).code ?? 1, stdout, stderr }))
  })

describe("the guard examples, against the official SDK client", () => {
  for (const example of ["examples/node-http.ts", "examples/express.ts", "examples/hono.ts"]) {
    it(example, async () => {
      const { code, stderr, stdout } = await run(example)
      assert.strictEqual(code, 0, stderr)
      const lines = stdout.trim().split("\n")
      assert.deepStrictEqual(lines, ["no token -> 401 no-credentials", "whoami -> thread-1 via claude-code"])
    })
  }
})
