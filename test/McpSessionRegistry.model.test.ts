/**
 * Random interleavings of operations and time steps, run against the registry
 * and against a deliberately naive model of its rules; both must agree on
 * every answer and on every revocation event.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Context, Effect, Exit, Layer, Redacted, Scope } from "effect"
import * as fc from "fast-check"
import { TestClock } from "effect/testing"
import { BearerToken, McpSessionRegistry, type Credential, type Revocation } from "../src/index.ts"

const minute = 60_000
const idle = 10 * minute
const maxLifetime = 30 * minute
const absolute = 45 * minute
const perThread = 3

const thread = fc.constantFrom(0, 1, 2)
// Picks lean towards recent credentials, which are the ones still alive.
const pick = fc.oneof(fc.nat(3).map((n) => -1 - n), fc.nat(40))

// Weighted so that a run issues, uses and lets time pass far more often than
// it revokes, and so reaches idle, expiry, caps and replacement.
const op = fc.oneof(
  { weight: 4, arbitrary: fc.record({ _tag: fc.constant("Issue" as const), thread, provider: fc.constantFrom(0, 1), replace: fc.boolean() }) },
  { weight: 6, arbitrary: fc.record({ _tag: fc.constant("Resolve" as const), pick }) },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("ResolveGarbage" as const) }) },
  { weight: 2, arbitrary: fc.record({ _tag: fc.constant("Touch" as const), thread }) },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("Revoke" as const), pick }) },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("RevokeSession" as const), pick }) },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("RevokeThread" as const), thread }) },
  { weight: 4, arbitrary: fc.record({ _tag: fc.constant("Advance" as const), minutes: fc.constantFrom(1, 5, 9, 10, 10, 10, 15, 20, 30, 35) }) },
  // Deadlines are inclusive: stepping one millisecond probes both sides of them.
  { weight: 3, arbitrary: fc.record({ _tag: fc.constant("Tick" as const) }) },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("List" as const) }) }
)

type Op = typeof op extends fc.Arbitrary<infer A> ? A : never

interface Modelled {
  readonly credential: Credential.IssuedCredential
  readonly issuedAt: number
  lastUsedAt: number
  left: Revocation.RevocationReason | undefined
}

const deadReason = (c: Modelled, now: number): "idle" | "expired" | undefined => {
  const idleAt = c.lastUsedAt + idle
  const expiresAt = Math.min(c.lastUsedAt + maxLifetime, c.issuedAt + absolute)
  if (now <= idleAt && now <= expiresAt) return undefined
  return idleAt < expiresAt ? "idle" : "expired"
}

const tombstone = (reason: Revocation.RevocationReason): Credential.InvalidReason =>
  reason === "idle" || reason === "expired" ? reason : "revoked"

const outcome = <A>(effect: Effect.Effect<A, { readonly reason: string }>) =>
  effect.pipe(Effect.as("ok"), Effect.catch((error) => Effect.succeed(error.reason)))

describe("McpSessionRegistry against a model", () => {
  it.effect("agrees with the model on every answer and every revocation", () =>
    Effect.gen(function*() {
      const context = yield* Effect.context<never>()
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(fc.array(op, { minLength: 20, maxLength: 120 }), (ops) =>
            Effect.runPromiseWith(context)(run(ops))
          ),
          { numRuns: 500 }
        )
      )
    }))
})

const run = (ops: ReadonlyArray<Op>) =>
      Effect.gen(function*() {
        const events: Array<Revocation.RevocationEvent> = []
        const scope = yield* Scope.make()
        const context = yield* Layer.buildWithScope(
          McpSessionRegistry.layer({
            idleTimeout: idle,
            maxLifetime,
            absoluteLifetime: absolute,
            sweepInterval: 5 * minute,
            maxCredentials: Infinity,
            maxCredentialsPerThread: perThread,
            tombstoneRetention: "3650 days",
            maxTombstones: Infinity,
            hooks: [(event) => Effect.sync(() => void events.push(event))]
          }),
          scope
        )
        const registry = Context.get(context, McpSessionRegistry.McpSessionRegistry)
        const model: Array<Modelled> = []
        const pick = (n: number) =>
          model.length === 0 ? undefined : model[n < 0 ? Math.max(0, model.length + n) : n % model.length]
        const inThread = (thread: string) => model.filter((c) => c.left === undefined && c.credential.threadId === thread)
        const reclaimDead = (cs: ReadonlyArray<Modelled>, now: number) => {
          for (const c of cs) c.left ??= deadReason(c, now)
        }

        for (const op of ops) {
          const now = yield* Clock.currentTimeMillis
          switch (op._tag) {
            case "Issue": {
              const threadId = `t${op.thread}`
              const providerInstanceId = `p${op.provider}`
              const mine = inThread(threadId)
              reclaimDead(mine, now)
              const live = mine.filter((c) => c.left === undefined)
              // A replacing issue replaces every live credential of the pair.
              const targets = op.replace
                ? live.filter((c) => c.credential.providerInstanceId === providerInstanceId)
                : []
              const result = yield* Effect.result(registry.issue({ threadId, providerInstanceId, replace: op.replace }))
              if (live.length - targets.length >= perThread) {
                assert.strictEqual(result._tag, "Failure", "issue past the thread cap")
              } else {
                assert.strictEqual(result._tag, "Success", "issue under the thread cap")
                if (result._tag === "Success") {
                  for (const target of targets) target.left = "replaced"
                  model.push({ credential: result.success, issuedAt: now, lastUsedAt: now, left: undefined })
                }
              }
              break
            }
            case "Resolve": {
              const c = pick(op.pick)
              if (!c) break
              const token = Redacted.value(c.credential.token)
              if (c.left !== undefined) {
                assert.strictEqual(yield* outcome(registry.resolve(token)), tombstone(c.left))
              } else {
                const dead = deadReason(c, now)
                if (dead !== undefined) {
                  c.left = dead
                  assert.strictEqual(yield* outcome(registry.resolve(token)), dead)
                } else {
                  const resolved = yield* registry.resolve(token)
                  c.lastUsedAt = now
                  assert.strictEqual(resolved.credentialId, c.credential.credentialId)
                  assert.strictEqual(resolved.expiresAt, Math.min(now + maxLifetime, c.issuedAt + absolute))
                }
              }
              break
            }
            case "ResolveGarbage": {
              assert.strictEqual(yield* outcome(registry.resolve(BearerToken.mint())), "unknown")
              break
            }
            case "Touch": {
              const mine = inThread(`t${op.thread}`)
              reclaimDead(mine, now)
              const live = mine.filter((c) => c.left === undefined)
              for (const c of live) c.lastUsedAt = now
              assert.strictEqual(yield* registry.touch(`t${op.thread}`), live.length)
              break
            }
            case "Revoke":
            case "RevokeSession": {
              const c = pick(op.pick)
              if (!c) break
              let expected = false
              if (c.left === undefined) {
                c.left = deadReason(c, now) ?? (op._tag === "Revoke" ? "revoked" : "session-stopped")
                expected = c.left === "revoked" || c.left === "session-stopped"
              }
              const answer = op._tag === "Revoke"
                ? yield* registry.revoke(c.credential.credentialId)
                : (yield* registry.revokeProviderSession(c.credential.providerSessionId)) === 1
              assert.strictEqual(answer, expected)
              break
            }
            case "RevokeThread": {
              let expected = 0
              for (const c of inThread(`t${op.thread}`)) {
                c.left = deadReason(c, now) ?? "session-stopped"
                if (c.left === "session-stopped") expected++
              }
              assert.strictEqual(yield* registry.revokeThread(`t${op.thread}`), expected)
              break
            }
            case "Advance": {
              yield* TestClock.adjust(op.minutes * minute)
              break
            }
            case "Tick": {
              yield* TestClock.adjust(1)
              break
            }
            case "List": {
              const expected = model.filter((c) => c.left === undefined && deadReason(c, now) === undefined)
              assert.sameMembers(
                (yield* registry.list).map((c) => c.credentialId),
                expected.map((c) => c.credential.credentialId)
              )
              break
            }
          }
        }

        const end = yield* Clock.currentTimeMillis
        yield* Scope.close(scope, Exit.void)
        const seen = new Map<string, Array<string>>()
        for (const event of events) {
          const id = event.credential.credentialId
          seen.set(id, [...(seen.get(id) ?? []), event.reason])
        }
        assert.strictEqual(seen.size, model.length)
        for (const c of model) {
          const expected = c.left ?? deadReason(c, end) ?? "shutdown"
          assert.deepStrictEqual(seen.get(c.credential.credentialId), [expected], c.credential.credentialId)
        }
      })
