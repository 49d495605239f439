import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Logger, Redacted, References, Tracer } from "effect"
import { TestClock } from "effect/testing"
import { inspect } from "node:util"
import { McpSessionRegistry } from "../src/index.ts"
import { recordingLogger, recordingTracer } from "./support/recording.ts"

describe("McpSessionRegistry secrets", () => {
  it.effect("no log line or span carries a token through a whole session", () => {
    const { spans, tracer } = recordingTracer()
    const { logger: capture, lines } = recordingLogger()
    const tokens: Array<string> = []
    return Effect.gen(function*() {
      const registry = yield* McpSessionRegistry.McpSessionRegistry
      const a = yield* registry.issue({ threadId: "t", providerInstanceId: "claude" })
      const b = yield* registry.issue({ threadId: "t", providerInstanceId: "codex" })
      const c = yield* registry.issue({ threadId: "u", providerInstanceId: "claude" })
      tokens.push(...[a, b, c].map((x) => Redacted.value(x.token)))
      yield* registry.resolve(tokens[0]!)
      yield* registry.resolve(tokens[0]! + "x").pipe(Effect.ignore)
      yield* registry.resolve(tokens[0]!.slice(0, -1) + "A").pipe(Effect.ignore)
      yield* registry.issue({ threadId: "t", providerInstanceId: "claude" })
      yield* registry.revoke(b.credentialId)
      yield* registry.resolve(tokens[1]!).pipe(Effect.ignore)
      yield* TestClock.adjust("31 minutes")
      yield* registry.resolve(tokens[2]!).pipe(Effect.ignore)
      yield* Effect.logError("host log of a credential", a, c)
    }).pipe(
      Effect.provide(McpSessionRegistry.layer({
        hooks: [
          (event) => Effect.fail(event),
          (event) => Effect.die(event)
        ]
      })),
      Effect.provide(Layer.mergeAll(
        Logger.layer([capture]),
        Layer.succeed(References.MinimumLogLevel, "All"),
        Layer.succeed(Tracer.Tracer, tracer)
      )),
      Effect.andThen(Effect.sync(() => {
        const spanText = spans.map((span) => inspect({ name: span.name, attributes: span.attributes, events: span.events, status: span.status }, { depth: 10 }))
        assert.isAbove(lines.length, 3, "the logger captured the failing hooks")
        assert.isTrue(spans.some((span) => span.name === "McpSessionRegistry.issue"))
        assert.isTrue(spans.some((span) => span.name === "McpSessionRegistry.revoke"))
        for (const token of tokens) {
          const secret = token.slice("mcpsr_".length, 40)
          for (const text of [...lines, ...spanText]) assert.notInclude(text, secret)
        }
      }))
    )
  })
})
