/**
 * `npm run demo:replicas`, run for real: two replica processes on a
 * throwaway redis-server, with the transcript checked step by step and no
 * token printed anywhere.
 */
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "vitest"
import { BearerToken } from "../src/index.ts"

const root = fileURLToPath(new URL("..", import.meta.url))

describe("npm run demo:replicas", () => {
  it("mints on A, answers on B, survives A's restart, refuses on A after a revoke on B", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", "examples/demo-replicas.ts"], { cwd: root, stdio: "pipe" })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve))
    assert.strictEqual(code, 0, stdout + stderr)
    const expected = [
      /1\. Redis/,
      /2\. Replicas A and B started/,
      /3\. Credential minted on A; its agent calls B/,
      /agent -> B: session_info -> thread "thread-1"/,
      /4\. A restarts/,
      /agent -> A: session_info -> thread "thread-1"/,
      /5\. Session revoked on B/,
      /revocation hook on B: cred_\S+ left, reason "revoked"/,
      /agent -> A: refused: HTTP 401, the bearer token was revoked/,
      /replicas stopped, redis-server stopped/
    ]
    let from = 0
    for (const pattern of expected) {
      const match = pattern.exec(stdout.slice(from))
      assert.isNotNull(match, `${pattern} after position ${from} in:\n${stdout}`)
      from += match!.index + match![0].length
    }
    assert.notMatch(stdout + stderr, new RegExp(BearerToken.pattern.source))
  }, 60_000)
})
