/**
 * Refusals the host can see, on Redis (issue #11, item 5), with two replicas
 * on one prefix and a real `redis-server`: one warning per once-valid
 * credential across both replicas, however often and wherever its token is
 * refused, and never-valid tokens only summarized, at most once a minute.
 * No line holds a token or its digest.
 */
import { NodeRedis } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Redacted, Scope } from "effect"
import { TestClock } from "effect/testing"
import { BearerToken, McpSessionRegistry } from "../../src/index.ts"
import { capturingLogs } from "../support/recording.ts"
import { advanceRedis, freshPrefix, redisServer, settleRedis } from "../support/stores.ts"

const minutes = (n: number) => n * 60_000
const server = redisServer()
const token = (credential: { readonly token: Redacted.Redacted<string> }) => Redacted.value(credential.token)

const capture = capturingLogs

/** One replica with its own client, logging into `logged`, open until `scope` closes. */
const replica = (options: McpSessionRegistry.RedisOptions, logged: Layer.Layer<never>, scope: Scope.Scope) =>
  Effect.map(
    Layer.buildWithScope(
      McpSessionRegistry.layerRedis({ storeTimeout: "15 seconds", ...options }).pipe(
        Layer.provide(NodeRedis.layer({ url: server.current().url })),
        Layer.provide(logged)
      ),
      scope
    ),
    (context) => Context.get(context, McpSessionRegistry.McpSessionRegistry)
  )

const digestForms = (t: string) => {
  const digest = Buffer.from(BearerToken.digest(t), "latin1")
  return [
    digest.toString("latin1"),
    digest.toString("hex"),
    digest.toString("base64url"),
    // The verifier the store keeps in Redis.
    digest.toString("base64url", 16, 32)
  ]
}

describe("McpSessionRegistry on Redis: refusals in the log", () => {
  it.effect("one warning per once-valid credential across two replicas; never the token or its digest", () =>
    Effect.gen(function*() {
      const logged = capture()
      const keyPrefix = freshPrefix()
      const scope = yield* Effect.scope
      // No sweeper: the idle one is found dead by a lookup, the others by their tombstones.
      const a = yield* replica({ keyPrefix, idleTimeout: "10 minutes", sweepInterval: "1 day" }, logged.layer, scope)
      const b = yield* replica({ keyPrefix, idleTimeout: "10 minutes", sweepInterval: "1 day" }, logged.layer, scope)
      // Not ASCII, and with the separator the store writes, so the line shows what was issued.
      const revoked = yield* a.issue({ threadId: "thread-r|é", providerInstanceId: "claude" })
      const idle = yield* a.issue({ threadId: "thread-i", providerInstanceId: "codex|🙂" })
      const replaced = yield* a.issue({ threadId: "thread-x", providerInstanceId: "gemini" })
      yield* b.issue({ threadId: "thread-x", providerInstanceId: "gemini" })
      yield* b.revoke(revoked.credentialId)
      yield* advanceRedis(minutes(5))
      yield* a.touch("thread-r|é")
      yield* a.touch("thread-x")
      yield* advanceRedis(minutes(6))
      // Refused on both replicas, concurrently too: still one warning each.
      for (let i = 0; i < 10; i++) {
        yield* Effect.forEach(
          [revoked, idle, replaced],
          (c) => Effect.flip((i % 2 === 0 ? a : b).resolve(token(c))),
          { concurrency: "unbounded" }
        )
        yield* Effect.forEach([revoked, idle, replaced], (c) => Effect.flip((i % 2 === 0 ? b : a).resolve(token(c))), {
          concurrency: "unbounded"
        })
      }
      yield* settleRedis
      const warnings = logged.lines.filter((line) => line.level === "Warn" && line.annotations["credentialId"] !== undefined)
      assert.strictEqual(warnings.length, 3, JSON.stringify(warnings.map((line) => line.text)))
      const byId = new Map(warnings.map((line) => [line.annotations["credentialId"], line]))
      for (
        const [c, reason, leftAs] of [
          [revoked, "revoked", "revoked"],
          [idle, "idle", "idle"],
          [replaced, "revoked", "replaced"]
        ] as const
      ) {
        const line = byId.get(c.credentialId)!
        assert.isDefined(line, c.credentialId)
        assert.include(line.text, c.credentialId)
        assert.include(line.text, JSON.stringify(c.threadId))
        assert.include(line.text, JSON.stringify(c.providerInstanceId))
        assert.include(line.text, reason)
        assert.strictEqual(line.annotations["threadId"], c.threadId)
        assert.strictEqual(line.annotations["providerInstanceId"], c.providerInstanceId)
        assert.strictEqual(line.annotations["providerSessionId"], c.providerSessionId)
        assert.strictEqual(line.annotations["reason"], reason)
        assert.strictEqual(line.annotations["leftAs"], leftAs)
      }
      const everything = JSON.stringify(logged.lines)
      const raw = logged.lines.map((line) => `${line.text} ${Object.values(line.annotations).join(" ")}`).join("\n")
      for (const c of [revoked, idle, replaced]) {
        assert.notInclude(everything, token(c).slice(8, 40))
        for (const form of digestForms(token(c))) {
          assert.notInclude(raw, form)
          assert.notInclude(everything, form)
        }
      }
    }).pipe(Effect.scoped))

  it.effect("a spray of never-valid tokens writes a few summary lines, counted, and no token", () =>
    Effect.gen(function*() {
      const logged = capture()
      const keyPrefix = freshPrefix()
      const scope = yield* Effect.scope
      const a = yield* replica({ keyPrefix, sweepInterval: "1 day" }, logged.layer, scope)
      yield* a.issue({ threadId: "t", providerInstanceId: "p" })
      // Well-formed tokens Redis never saw (each costs a round trip), and garbage (none).
      const sprayed = Array.from({ length: 40 }, () => BearerToken.mint())
      const total = 4_000
      for (let i = 0; i < total; i++) {
        const candidate = i % 4 === 0 ? `garbage-${i}` : sprayed[i % sprayed.length]!
        yield* Effect.flip(a.resolve(candidate))
        if (i === total / 2) yield* TestClock.adjust(30_000)
      }
      yield* TestClock.adjust(31_000)
      yield* a.sweep
      yield* a.sweep
      yield* settleRedis
      const lines = logged.lines.filter((line) => line.text.includes("never valid"))
      assert.isAtLeast(lines.length, 2)
      assert.isAtMost(lines.length, 3)
      assert.include(lines[0]!.text, "1 bearer token that was never valid")
      const counted = lines.reduce(
        (sum, line) => sum + Number(line.annotations["unknown"]) + Number(line.annotations["malformed"]),
        0
      )
      assert.strictEqual(counted, total)
      assert.strictEqual(
        lines.reduce((sum, line) => sum + Number(line.annotations["unknown"]), 0),
        total - total / 4
      )
      const everything = JSON.stringify(logged.lines)
      for (const t of sprayed) {
        assert.notInclude(everything, t.slice(8, 40))
        for (const form of digestForms(t)) assert.notInclude(everything, form)
      }
      // No warning per never-valid token.
      assert.isFalse(logged.lines.some((line) => line.annotations["credentialId"] !== undefined))
    }).pipe(Effect.scoped))
})
