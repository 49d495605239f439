/**
 * A client that goes away at any moment of an accepted request (the fiber
 * interrupted) must still end the call the guard began for it, exactly once:
 * a call left in flight keeps its credential from ever going idle.
 *
 * The request fibers run on a scheduler this test steps by hand, with a
 * budget of one operation per step, so the client can abort after every
 * single step of the request, including the one between beginning the call
 * and installing what ends it.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Redacted, Scheduler } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { McpBearerAuth, McpSessionRegistry } from "../src/index.ts"
import * as SyncLookup from "../src/internal/syncLookup.ts"

// A scheduler whose tasks wait until the test runs them, one at a time.
const steppedScheduler = () => {
  const pending: Array<() => void> = []
  const scheduler = new Scheduler.MixedScheduler("async", (task) => {
    pending.push(task)
    return () => {
      const at = pending.indexOf(task)
      if (at !== -1) pending.splice(at, 1)
    }
  })
  const step = (): boolean => {
    const task = pending.shift()
    if (task === undefined) return false
    task()
    return true
  }
  return { scheduler, step }
}

interface Counts {
  begun: number
  ended: number
}

// The registry's calls, counted; without its plain path (`viaResolve`) the
// guard goes through `resolve` and `beginCall`, as on Redis.
const counted = (
  registry: McpSessionRegistry.McpSessionRegistry["Service"],
  counts: Counts,
  viaResolve: boolean
): McpSessionRegistry.McpSessionRegistry["Service"] => {
  const counting = (end: () => void) => {
    counts.begun++
    return () => {
      counts.ended++
      end()
    }
  }
  const service = { ...registry, beginCall: (id: string) => Effect.map(registry.beginCall(id), counting) }
  if (!viaResolve) {
    const sync = SyncLookup.syncLookup(registry)!
    SyncLookup.attach(service, {
      ...sync,
      lookupCall: (token) => {
        const found = sync.lookupCall(token)
        return "_tag" in found ? found : { scope: found.scope, end: counting(found.end) }
      }
    })
  }
  return service
}

const whoami = Effect.map(McpBearerAuth.CurrentCredential, (c) => HttpServerResponse.text(c.threadId))

describe("McpBearerAuth: a request interrupted at any step", () => {
  for (const viaResolve of [false, true]) {
    it.live(`ends every call it began, exactly once (${viaResolve ? "resolve, beginCall" : "lookupCall"})`, () =>
      Effect.gen(function*() {
        const registry = yield* McpSessionRegistry.make()
        const credential = yield* registry.issue({ threadId: "t", providerInstanceId: "p" })
        const counts: Counts = { begun: 0, ended: 0 }
        const app = HttpRouter.add("GET", "/whoami", whoami).pipe(
          Layer.provide(McpBearerAuth.layer()),
          Layer.provide(Layer.succeed(McpSessionRegistry.McpSessionRegistry, counted(registry, counts, viaResolve)))
        )
        const { dispose, handler } = HttpRouter.toWebHandler(app, { disableLogger: true })
        yield* Effect.addFinalizer(() => Effect.promise(dispose))
        // Warm up: the app's layers are built on the first request.
        const first = yield* Effect.promise(() =>
          handler(
            new Request("http://127.0.0.1:3000/whoami", {
              headers: { host: "127.0.0.1:3000", authorization: `Bearer ${Redacted.value(credential.token)}` }
            })
          )
        )
        assert.strictEqual(first.status, 200)
        assert.deepStrictEqual(counts, { begun: 1, ended: 1 })
        let completed = 0
        let interruptedInFlight = 0
        for (let steps = 0; steps < 200; steps++) {
          const { scheduler, step } = steppedScheduler()
          const context = Context.make(Scheduler.Scheduler, scheduler).pipe(
            Context.add(Scheduler.MaxOpsBeforeYield, 3)
          )
          const client = new AbortController()
          const before = { ...counts }
          let answered: Response | undefined
          void handler(
            new Request("http://127.0.0.1:3000/whoami", {
              headers: { host: "127.0.0.1:3000", authorization: `Bearer ${Redacted.value(credential.token)}` },
              signal: client.signal
            }),
            context
          ).then((response) => (answered = response))
          for (let i = 0; i < steps && step(); i++);
          const begunBeforeAbort = counts.begun - before.begun
          client.abort()
          for (let i = 0; i < 100_000 && step(); i++);
          yield* Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
          assert.strictEqual(counts.ended, counts.begun, `aborted after ${steps} steps: calls begun and ends`)
          if (answered?.status === 200) completed++
          else if (begunBeforeAbort === 1) interruptedInFlight++
          if (completed > 3) break
        }
        // The sweep reached both ends: requests interrupted with their call
        // begun, and requests that completed before the abort.
        assert.isAbove(interruptedInFlight, 0)
        assert.isAbove(completed, 0)
      }).pipe(Effect.scoped))
  }
})
