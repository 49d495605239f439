/**
 * Faults: hooks that fail, die, throw or hang forever; a sweep interrupted
 * mid-way; callers interrupted while their hooks run; the layer closed while
 * requests are in flight. In every case each credential's hooks run to the
 * end exactly once, no credential survives shutdown, shutdown finishes within
 * its bound, no promise rejection goes unhandled and no fiber is left running.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Fiber, Layer, Redacted, Scope } from "effect"
import { TestClock } from "effect/testing"
import { McpSessionRegistry, type RegistryConfig, type Revocation } from "../../src/index.ts"
import { fiberTracker, recorder } from "./support.ts"

const unhandled: Array<unknown> = []
const onUnhandled = (reason: unknown) => void unhandled.push(reason)
beforeAll(() => void process.on("unhandledRejection", onUnhandled))
afterAll(() => {
  process.off("unhandledRejection", onUnhandled)
  assert.deepStrictEqual(unhandled, [], "unhandled promise rejections")
})

/** A hook that sleeps `millis` of virtual time and records when it started and finished. */
const slowHook = (millis: number) => {
  const started: Array<string> = []
  const finished: Array<string> = []
  const hook: Revocation.RevocationHook = (event) =>
    Effect.gen(function*() {
      started.push(event.credential.credentialId)
      yield* Effect.sleep(millis)
      finished.push(event.credential.credentialId)
    })
  return { started, finished, hook }
}

const failing: Revocation.RevocationHook = () => Effect.fail("hook failed")
const dying: Revocation.RevocationHook = () => Effect.die(new Error("hook died"))
const throwing: Revocation.RevocationHook = () => {
  throw new Error("hook threw")
}
const rejecting: Revocation.RevocationHook = () => Effect.promise(() => Promise.reject(new Error("hook rejected")))
const hanging: Revocation.RevocationHook = () => Effect.never
// Outside the types, as a JavaScript host might write it: an async function.
const asyncRejecting = (async () => {
  throw new Error("async hook failed")
}) as unknown as Revocation.RevocationHook

/** Builds the registry in a scope of its own, so a test can close it mid-flight. */
const open = (options: RegistryConfig.Options) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(McpSessionRegistry.layer(options), scope)
    return { registry: Context.get(context, McpSessionRegistry.McpSessionRegistry), scope }
  })

const token = (credential: { readonly token: Redacted.Redacted<string> }) => Redacted.value(credential.token)

describe("hardening: faults", () => {
  it.effect("failing, dying, throwing, rejecting, async and hanging hooks: every other hook still runs once", () => {
    const tracker = fiberTracker()
    return tracker.track(Effect.gen(function*() {
      const recorded = recorder()
      const { registry, scope } = yield* open({
        hooks: [failing, dying, throwing, rejecting, asyncRejecting, hanging, recorded.hook],
        hookTimeout: "1 second"
      })
      const issued = []
      for (let i = 0; i < 20; i++) {
        issued.push(yield* registry.issue({ threadId: `t${i % 4}`, providerInstanceId: `p${i}` }))
      }
      const revoking = yield* Effect.forkChild(registry.revoke(issued[0]!.credentialId))
      const stopping = yield* Effect.forkChild(registry.revokeThread("t1"))
      yield* TestClock.adjust("1 second")
      assert.isTrue(yield* Fiber.join(revoking))
      assert.strictEqual(yield* Fiber.join(stopping), 5)
      const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(closing)
      const byCredential = recorded.byCredential()
      assert.strictEqual(byCredential.size, 20)
      for (const credential of issued) assert.lengthOf(byCredential.get(credential.credentialId)!, 1)
      for (const credential of issued) {
        assert.isTrue(Exit.isFailure(yield* Effect.exit(registry.resolve(token(credential)))))
      }
      assert.strictEqual(tracker.active, 0, "fibers left running")
    }))
  })

  it.effect("a caller interrupted while its hooks run does not cut the hooks short", () =>
    Effect.gen(function*() {
      const slow = slowHook(500)
      const { registry, scope } = yield* open({ hooks: [slow.hook], hookTimeout: "5 seconds" })
      const a = yield* registry.issue({ threadId: "t", providerInstanceId: "a" })
      const b = yield* registry.issue({ threadId: "u", providerInstanceId: "b" })
      // The request that revoked goes away (say, its client disconnected).
      const revoking = yield* Effect.forkChild(registry.revoke(a.credentialId))
      const stopping = yield* Effect.forkChild(registry.revokeThread("u"))
      yield* TestClock.adjust(100)
      yield* Fiber.interrupt(revoking)
      yield* Fiber.interrupt(stopping)
      yield* TestClock.adjust(1_000)
      assert.sameMembers(slow.started, [a.credentialId, b.credentialId])
      assert.sameMembers(slow.finished, [a.credentialId, b.credentialId])
      assert.isTrue(Exit.isFailure(yield* Effect.exit(registry.resolve(token(a)))))
      yield* Scope.close(scope, Exit.void)
    }))

  it.effect("an interrupted sweep loses no hook: what it reclaimed finishes, the rest is swept later", () => {
    const tracker = fiberTracker()
    return tracker.track(Effect.gen(function*() {
      // 4,096 reclaimed credentials' hooks run 256 at a time: 16 rounds of 20 ms.
      const slow = slowHook(20)
      const recorded = recorder()
      const { registry, scope } = yield* open({
        hooks: [slow.hook, recorded.hook],
        idleTimeout: "1 minute",
        sweepInterval: "1 day",
        hookTimeout: "5 seconds"
      })
      // More than one sweep chunk, so the sweep yields between chunks.
      const count = McpSessionRegistry.sweepChunkSize + 1000
      for (let i = 0; i < count; i++) yield* registry.issue({ threadId: `t${i}`, providerInstanceId: "p" })
      yield* TestClock.adjust("2 minutes")
      const sweeping = yield* Effect.forkChild(registry.sweep)
      yield* TestClock.adjust(10)
      yield* Fiber.interrupt(sweeping)
      yield* TestClock.adjust(1_000)
      // Whatever the interrupted sweep took out ran its hooks to the end.
      assert.isAbove(slow.started.length, 0)
      assert.sameMembers(slow.finished, slow.started)
      const left = count - slow.started.length
      const rest = yield* Effect.forkChild(registry.sweep)
      yield* TestClock.adjust(1_000)
      assert.strictEqual(yield* Fiber.join(rest), left)
      assert.strictEqual(slow.finished.length, count)
      yield* Scope.close(scope, Exit.void)
      const byCredential = recorded.byCredential()
      assert.strictEqual(byCredential.size, count)
      for (const reasons of byCredential.values()) assert.deepStrictEqual(reasons, ["idle"])
      assert.strictEqual(tracker.active, 0, "fibers left running")
    }))
  })

  it.effect("closing the layer while the background sweeper runs hooks lets those hooks finish", () => {
    const tracker = fiberTracker()
    return tracker.track(Effect.gen(function*() {
      const slow = slowHook(2_000)
      const { registry, scope } = yield* open({
        hooks: [slow.hook],
        idleTimeout: "1 minute",
        sweepInterval: "2 minutes",
        hookTimeout: "5 seconds"
      })
      for (let i = 0; i < 10; i++) yield* registry.issue({ threadId: `t${i}`, providerInstanceId: "p" })
      // The sweeper wakes at 2 minutes and waits for ten 2-second hooks.
      yield* TestClock.adjust("2 minutes")
      assert.lengthOf(slow.started, 10)
      const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      yield* TestClock.adjust("5 seconds")
      yield* Fiber.join(closing)
      assert.lengthOf(slow.finished, 10)
      assert.strictEqual(tracker.active, 0, "fibers left running")
    }))
  })

  it.effect("a hanging hook delays no other hook, and shutdown of any number of credentials by one timeout", () =>
    Effect.gen(function*() {
      const recorded = recorder()
      const { registry, scope } = yield* open({ hooks: [hanging, recorded.hook], hookTimeout: "1 second" })
      for (let i = 0; i < 1_000; i++) yield* registry.issue({ threadId: `t${i % 10}`, providerInstanceId: `p${i}` })
      const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      yield* Effect.yieldNow
      // The hanging hook holds up only itself: the other hook saw every event at once.
      assert.strictEqual(recorded.events.length, 1_000)
      // Polled, not joined: joining would wait for however long shutdown takes.
      let seconds = 0
      while (closing.pollUnsafe() === undefined && seconds < 10) {
        yield* TestClock.adjust("1 second")
        yield* Effect.yieldNow
        seconds++
      }
      // The first 256 events time out together; the hook is then skipped for the rest.
      assert.strictEqual(seconds, 1)
      assert.strictEqual(recorded.events.length, 1_000)
      assert.isTrue(Exit.isSuccess(closing.pollUnsafe()!))
    }))

  it.effect("closing the layer while requests are in flight: no credential survives, nothing leaks", () => {
    const tracker = fiberTracker()
    return tracker.track(Effect.gen(function*() {
      const recorded = recorder()
      const slow = slowHook(300)
      const { registry, scope } = yield* open({
        hooks: [recorded.hook, slow.hook, hanging],
        hookTimeout: "1 second",
        idleTimeout: "1 second",
        sweepInterval: "500 millis"
      })
      const issued: Array<{ readonly credentialId: string; readonly token: string }> = []
      const surviving: Array<string> = []
      let closed = false
      // Request handlers that keep using the registry they were given.
      const handler = (n: number) =>
        Effect.gen(function*() {
          for (let i = 0;; i++) {
            const exit = yield* Effect.exit(
              registry.issue({ threadId: `t${n % 7}`, providerInstanceId: `p${i % 3}` })
            )
            if (Exit.isSuccess(exit)) {
              issued.push({ credentialId: exit.value.credentialId, token: token(exit.value) })
              if (closed) surviving.push(exit.value.credentialId)
            }
            const some = issued[(n * 7 + i) % issued.length]
            if (some !== undefined) {
              const resolved = yield* Effect.exit(registry.resolve(some.token))
              if (closed && Exit.isSuccess(resolved)) surviving.push(some.credentialId)
            }
            if (i % 5 === 0) yield* registry.revokeThread(`t${i % 7}`)
            yield* registry.touch(`t${n % 7}`)
            yield* Effect.sleep(10 + (n % 13))
          }
        })
      const handlers = yield* Effect.forEach(Array.from({ length: 50 }, (_, n) => n), (n) =>
        Effect.forkChild(handler(n)))
      for (let t = 0; t < 2_000; t += 50) yield* TestClock.adjust(50)
      const closing = yield* Effect.forkChild(
        Effect.andThen(Scope.close(scope, Exit.void), Effect.sync(() => void (closed = true)))
      )
      // Shutdown waits for hooks bounded by the 1 second hook timeout, while handlers keep calling.
      for (let t = 0; t < 1_500; t += 50) yield* TestClock.adjust(50)
      assert.isDefined(closing.pollUnsafe(), "shutdown did not finish within its bound")
      for (let t = 0; t < 500; t += 50) yield* TestClock.adjust(50)
      yield* Fiber.interruptAll(handlers)
      for (let t = 0; t < 1_500; t += 50) yield* TestClock.adjust(50)

      assert.deepStrictEqual(surviving, [], "credentials usable after shutdown")
      for (const credential of issued) {
        assert.isTrue(Exit.isFailure(yield* Effect.exit(registry.resolve(credential.token))))
      }
      assert.lengthOf(yield* registry.list, 0)
      // Every credential ever issued left exactly once, and its slow hook finished.
      const byCredential = recorded.byCredential()
      assert.strictEqual(byCredential.size, issued.length)
      for (const reasons of byCredential.values()) assert.lengthOf(reasons, 1)
      assert.sameMembers(slow.finished, issued.map((c) => c.credentialId))
      assert.isAbove(issued.length, 100)
      assert.isAbove(tracker.started, 100, "the tracker saw the forked fibers")
      assert.strictEqual(tracker.active, 0, "fibers left running")
    }))
  })
})
