/**
 * Bad input at the registry API: every method called with arbitrary values
 * (fast-check's `anything`, including objects with hostile getters, and
 * oversized strings) answers with a value or a typed error, never a defect,
 * and leaves the live credentials as they were.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Redacted } from "effect"
import fc from "fast-check"
import { McpSessionRegistry } from "../../src/index.ts"

const hostile = fc.constantFrom<unknown>(
  new Proxy({}, {
    get: () => {
      throw new Error("hostile getter")
    }
  }),
  Object.create(null),
  // Answers a string when checked, something else when read again.
  (() => {
    let reads = 0
    return {
      get threadId() {
        return ++reads === 1 ? "flip" : { not: "a string" }
      },
      providerInstanceId: "p"
    }
  })(),
  { threadId: { toString: () => "t" }, providerInstanceId: "p" },
  { threadId: "t", providerInstanceId: "p", capabilities: "tools" },
  { threadId: "t", providerInstanceId: "p", capabilities: [null] },
  { threadId: "t".repeat(10_000), providerInstanceId: "p" },
  { threadId: "t", providerInstanceId: "p", capabilities: new Array(10_000).fill("x".repeat(600)) },
  "x".repeat(1 << 20),
  Symbol("s"),
  10n
)
const argument = fc.oneof(fc.anything({ withBigInt: true, withMap: true, withSet: true, withTypedArray: true }), hostile)

describe("hardening: bad input at the registry API", () => {
  it.effect("arbitrary arguments get a value or a typed error, never a defect", () =>
    Effect.gen(function*() {
      const registry = yield* McpSessionRegistry.McpSessionRegistry
      const credential = yield* registry.issue({ threadId: "keep", providerInstanceId: "p" })
      const calls: ReadonlyArray<(value: unknown) => Effect.Effect<unknown, unknown>> = [
        (value) => registry.issue(value as never),
        (value) => registry.resolve(value as never),
        (value) => registry.touch(value as never),
        (value) => registry.revoke(value as never),
        (value) => registry.revokeProviderSession(value as never),
        (value) => registry.revokeThread(value as never)
      ]
      const defects: Array<string> = []
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(fc.integer({ min: 0, max: calls.length - 1 }), argument, async (method, value) => {
            const exit = await Effect.runPromiseExit(Effect.suspend(() => calls[method]!(value)))
            if (Exit.isFailure(exit) && Cause.hasDies(exit.cause)) {
              defects.push(`method ${method}: ${Cause.pretty(exit.cause).slice(0, 300)}`)
            }
            if (Exit.isFailure(exit) && !Cause.hasDies(exit.cause)) {
              const error = Cause.squash(exit.cause) as { readonly _tag?: string }
              assert.oneOf(error._tag, ["InvalidIssueRequest", "RegistryFull", "InvalidCredential"])
            }
          }),
          { numRuns: 2_000, seed: 7 }
        )
      )
      assert.deepStrictEqual(defects.slice(0, 5), [])
      // Whatever was issued holds exactly the strings that were checked.
      for (const info of yield* registry.list) {
        assert.isString(info.threadId)
        assert.isString(info.providerInstanceId)
        for (const capability of info.capabilities) assert.isString(capability)
      }
      // The one real credential is untouched by all of it.
      assert.strictEqual((yield* registry.resolve(Redacted.value(credential.token))).threadId, "keep")
    }).pipe(Effect.provide(McpSessionRegistry.layer())))
})
