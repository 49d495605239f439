/**
 * Concurrency: 120 fibers run random issue, resolve, touch, revoke,
 * revokeProviderSession and revokeThread against a handful of shared threads
 * for five seconds of virtual time, with slow, failing and timing-out hooks in
 * the way. Every invariant the registry promises is checked during the run and
 * after shutdown.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Fiber, Layer, Redacted, Scope } from "effect"
import { TestClock } from "effect/testing"
import { type Credential, McpSessionRegistry, type Revocation } from "../../src/index.ts"
import { advanceUntilDone, replicaPair, stores, type StoreUnderTest } from "../support/stores.ts"
import { metricValue, recorder, seeded } from "./support.ts"

const workers = 120
const runMillis = 5_000
const threads = Array.from({ length: 12 }, (_, i) => `t${i}`)
// A thread that is only ever touched, so its credentials reach the absolute cap.
const marathon = "marathon"
// Only these threads get `touch`ed, so the others' credentials can go idle.
const busyThreads = [...threads.slice(0, 4), marathon]
const providers = ["claude", "codex", "gemini"]

interface Known {
  readonly credentialId: string
  readonly providerSessionId: string
  readonly threadId: string
  readonly token: string
  /** Logical time at which `issue` returned it. */
  readonly issuedSeq: number
  /** Logical time from which no resolve may succeed; Infinity while it may live. */
  deadFrom: number
}

const runOnce = (seed: number, store: StoreUnderTest) =>
  Effect.gen(function*() {
    const random = seeded(seed)
    const recorded = recorder()
    const slowSeen: Array<string> = []
    // Slow hooks: some outlive the 100 ms hook timeout, some fail, some die.
    const slow: Revocation.RevocationHook = (event) =>
      Effect.suspend(() => {
        slowSeen.push(event.credential.credentialId)
        const roll = random.int(10)
        if (roll === 0) return Effect.fail("hook failed")
        if (roll === 1) return Effect.die(new Error("hook died"))
        return Effect.sleep(random.int(150))
      })
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(
      store.layer({
        idleTimeout: 400,
        maxLifetime: 1_500,
        absoluteLifetime: 1_000,
        sweepInterval: 250,
        hookTimeout: 100,
        tombstoneRetention: 1_000,
        maxTombstones: 64,
        maxCredentials: 150,
        maxCredentialsPerThread: 4,
        hooks: [recorded.hook, slow]
      }),
      scope
    )
    const registry = Context.get(context, McpSessionRegistry.McpSessionRegistry)

    // A logical clock: every call start and return gets a number, so "after"
    // below means "after in the one JavaScript thread everything runs on".
    let seq = 0
    const known: Array<Known> = []
    const byId = new Map<string, Known>()
    const violations: Array<string> = []
    const counts = { revokedTrue: 0, stopped: 0, resolvedOk: 0, resolvedFail: 0, full: 0, checks: 0 }

    // Marks credentials issued before `since` as dead from now on.
    const killIssuedBefore = (candidates: ReadonlyArray<Known>, since: number) => {
      const now = ++seq
      for (const k of candidates) if (k.issuedSeq < since && k.deadFrom > now) k.deadFrom = now
    }

    const operations: ReadonlyArray<readonly [number, () => Effect.Effect<void, McpSessionRegistry.StoreUnavailable>]> = [
      [
        40,
        () =>
          Effect.gen(function*() {
            if (known.length === 0) return
            const k = random.next() < 0.5 ? random.pick(known.slice(-50)) : random.pick(known)
            const start = ++seq
            const exit = yield* Effect.exit(registry.resolve(k.token))
            if (Exit.isSuccess(exit)) {
              counts.resolvedOk++
              if (k.deadFrom < start) violations.push(`${k.credentialId} resolved after it died`)
              if (exit.value.credentialId !== k.credentialId) violations.push(`${k.credentialId} resolved as another`)
            } else {
              counts.resolvedFail++
              killIssuedBefore([k], Infinity)
            }
          })
      ],
      [
        20,
        () =>
          Effect.gen(function*() {
            // A replacing issue replaces every credential of the pair, so
            // enough of them must be `replace: false` for some to live on and
            // go idle.
            const exit = yield* Effect.exit(
              issueKnown(random.pick(threads), random.pick(providers), random.next() < 0.6)
            )
            if (Exit.isFailure(exit)) counts.full++
          })
      ],
      [5, () => Effect.asVoid(registry.touch(random.pick(busyThreads)))],
      [
        10,
        () =>
          Effect.gen(function*() {
            const candidates = known.slice(-100).filter((k) => k.threadId !== marathon)
            if (candidates.length === 0) return
            const k = random.pick(candidates)
            const start = ++seq
            if (yield* registry.revoke(k.credentialId)) counts.revokedTrue++
            killIssuedBefore([k], start)
          })
      ],
      [
        3,
        () =>
          Effect.gen(function*() {
            const candidates = known.slice(-100).filter((k) => k.threadId !== marathon)
            if (candidates.length === 0) return
            const k = random.pick(candidates)
            const start = ++seq
            // Read before adding: `counts.stopped += yield* ...` would lose updates across fibers.
            const stopped = yield* registry.revokeProviderSession(k.providerSessionId)
            counts.stopped += stopped
            killIssuedBefore([k], start)
          })
      ],
      [
        2,
        () =>
          Effect.gen(function*() {
            const threadId = random.pick(threads)
            const start = ++seq
            const stopped = yield* registry.revokeThread(threadId)
            counts.stopped += stopped
            killIssuedBefore(known.filter((k) => k.threadId === threadId), start)
            // No credential issued before the call may outlive it, in list either.
            for (const info of yield* registry.list) {
              const k = byId.get(info.credentialId)
              if (k !== undefined && k.threadId === threadId && k.issuedSeq < start) {
                violations.push(`${k.credentialId} listed after its thread was revoked`)
              }
            }
          })
      ],
      [
        3,
        () =>
          Effect.gen(function*() {
            // Both read at the same virtual instant, with nothing in between.
            const listed = (yield* registry.list).length
            counts.checks++
            // On Redis the gauge is as of this replica's last store call, and
            // other fibers' calls interleave with this one: memory only.
            if (store.name !== "memory") return
            const gauge = yield* metricValue("mcp_session_registry_credentials_live")
            if (gauge !== listed) violations.push(`live gauge ${gauge} but list has ${listed}`)
          })
      ]
    ]
    const totalWeight = operations.reduce((sum, [weight]) => sum + weight, 0)
    const step = () => {
      let roll = random.int(totalWeight)
      for (const [weight, op] of operations) {
        if (roll < weight) return op()
        roll -= weight
      }
      throw new Error("unreachable")
    }

    const issueKnown = Effect.fnUntraced(function*(threadId: string, providerInstanceId: string, replace: boolean) {
      const credential = yield* registry.issue({ threadId, providerInstanceId, replace })
      const k: Known = {
        credentialId: credential.credentialId,
        providerSessionId: credential.providerSessionId,
        threadId,
        token: Redacted.value(credential.token),
        issuedSeq: ++seq,
        deadFrom: Infinity
      }
      if (byId.has(k.credentialId)) violations.push(`credential id ${k.credentialId} issued twice`)
      known.push(k)
      byId.set(k.credentialId, k)
    })
    for (const provider of providers) yield* issueKnown(marathon, provider, true)

    // Set once the clock has passed the end: a worker then stops after the
    // operation it is in, without sleeping again.
    let stopping = false
    const worker = Effect.gen(function*() {
      while ((yield* TestClock.testClockWith((clock) => Effect.sync(() => clock.currentTimeMillisUnsafe()))) < runMillis) {
        yield* step()
        if (stopping) break
        yield* Effect.sleep(random.int(100))
      }
    })
    const fibers = yield* Effect.forEach(Array.from({ length: workers }), () => Effect.forkChild(worker))
    // Workers stop within 100 ms of the end; hooks they wait for within 100 ms.
    // Each step lets the store's I/O finish (at once in memory): a TestClock does not wait for Redis.
    for (let t = 0; t < runMillis + 250; t += 50) {
      yield* TestClock.adjust(50)
      yield* store.settle
    }
    // A worker whose store call was still in flight (Redis I/O is real time)
    // ends after it; one asleep wakes within 100 ms: step on until all are done.
    stopping = true
    yield* advanceUntilDone(store, yield* Effect.forkChild(Fiber.joinAll(fibers)), 50)

    const listed = yield* registry.list
    for (const info of listed) {
      const k = byId.get(info.credentialId)
      if (k === undefined) violations.push(`${info.credentialId} listed but never issued`)
      else if (k.deadFrom !== Infinity) violations.push(`${info.credentialId} listed after it died`)
    }
    const eventsBeforeShutdown = recorded.events.length
    const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
    yield* advanceUntilDone(store, closing, 200)

    // After shutdown nothing resolves.
    for (const k of known) {
      if (Exit.isSuccess(yield* Effect.exit(registry.resolve(k.token)))) {
        violations.push(`${k.credentialId} resolved after shutdown`)
      }
    }

    // Every credential left exactly once, with one reason, and every hook saw it once.
    const byCredential = recorded.byCredential()
    for (const k of known) {
      const reasons = byCredential.get(k.credentialId)
      if (reasons === undefined || reasons.length !== 1) {
        violations.push(`${k.credentialId} left with reasons ${JSON.stringify(reasons)}`)
      }
    }
    assert.strictEqual(byCredential.size, known.length, "events for credentials never issued")
    assert.sameMembers(slowSeen, recorded.events.map((e) => e.credential.credentialId))
    const reasonCount = (reason: Revocation.RevocationReason) =>
      recorded.events.filter((e) => e.reason === reason).length
    // What the revoking calls reported as live is exactly what left with their reason.
    assert.strictEqual(reasonCount("revoked"), counts.revokedTrue)
    assert.strictEqual(reasonCount("session-stopped"), counts.stopped)
    // What `list` showed just before shutdown is exactly what shutdown revoked.
    assert.strictEqual(reasonCount("shutdown"), listed.length)
    // Dead credentials not yet reclaimed leave at shutdown too, with their own reason.
    assert.isAtLeast(recorded.events.length - eventsBeforeShutdown, listed.length)

    assert.deepStrictEqual(violations.slice(0, 10), [])
    return { counts, known: known.length, reasons: recorded.events.map((e) => e.reason) }
  })

// The Redis run twice: one registry, then two replicas on one prefix with calls spread over both.
for (const store of [...stores(), replicaPair()]) describe(`hardening: concurrency (${store.name})`, () => {
  it.effect("120 fibers of random operations on shared threads keep every invariant", () =>
    Effect.gen(function*() {
      const result = yield* runOnce(Number(process.env.HARDENING_SEED ?? 20261123), store)
      // The run exercised what it claims to: every way out, and the caps.
      const reasons = new Set<Credential.InvalidReason | string>(result.reasons)
      for (const reason of ["revoked", "session-stopped", "replaced", "idle", "expired", "shutdown"]) {
        assert.isTrue(reasons.has(reason), `no credential left as ${reason}`)
      }
      assert.isAbove(result.known, 500)
      assert.isAbove(result.counts.resolvedOk, 500)
      assert.isAbove(result.counts.resolvedFail, 1_000)
      assert.isAbove(result.counts.full, 0)
      assert.isAbove(result.counts.checks, 100)
    }), 240_000) // Real Redis I/O on a machine the whole suite loads at once: far slower than alone.
})
