/**
 * Bad input at the HTTP guard: a property-based fuzz of 10,000 generated
 * requests against a real server on 127.0.0.1, sent over keep-alive
 * connections 16 at a time. Each request carries one flaw (a wrong token in
 * any scheme spelling, no credentials, a foreign scheme, a duplicated
 * `Authorization`, a token in the query string, an odd `Host` or `Origin`),
 * and tokens come one character off, truncated, padded, with NUL, with
 * unicode, 64 KB long, revoked or minted elsewhere. None is accepted, none is
 * a 5xx, every 401 carries a correct challenge, the server stays up and a
 * valid token works afterwards.
 *
 * Also the guard under spraying: 100,000 wrong tokens through the guard's own
 * check leave the registry as it was and cost one lookup each.
 */
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import { HttpRouter, HttpServer, HttpServerRequest, HttpServerResponse } from "effect/http"
import fc from "fast-check"
import { createServer } from "node:http"
import { BearerToken, McpBearerAuth, McpSessionRegistry } from "../../src/index.ts"
import { pool, type RawRequest, type RawResponse } from "./rawClient.ts"
import { metricValue, seeded } from "./support.ts"

const Whoami = HttpRouter.add(
  "*",
  "/mcp",
  Effect.gen(function*() {
    const credential = yield* McpBearerAuth.CurrentCredential
    return HttpServerResponse.text(credential.credentialId)
  })
).pipe(Layer.provide(McpBearerAuth.layer()))

const Served = HttpRouter.serve(Whoami, { disableLogger: true, disableListenLog: true }).pipe(
  Layer.provideMerge(NodeHttpServer.layerServer(createServer, { host: "127.0.0.1", port: 0 })),
  Layer.provideMerge(McpSessionRegistry.layer())
)

/** Everything the generators need to know about the server and its tokens. */
interface World {
  readonly port: number
  readonly valid: string
  readonly revoked: string
}

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

/** Tokens that must never authenticate. */
const wrongToken = (world: World): fc.Arbitrary<string> => {
  const body = BearerToken.length - BearerToken.prefix.length
  const at = fc.integer({ min: 0, max: BearerToken.length - 1 })
  return fc.oneof(
    // One character off, anywhere (the prefix included).
    fc.tuple(at, fc.integer({ min: 1, max: 63 })).map(([i, shift]) => {
      const c = world.valid[i]!
      const swapped = alphabet.includes(c) ? alphabet[(alphabet.indexOf(c) + shift) % 64]! : "x"
      return world.valid.slice(0, i) + swapped + world.valid.slice(i + 1)
    }),
    fc.integer({ min: 0, max: BearerToken.length - 1 }).map((n) => world.valid.slice(0, n)),
    fc.constantFrom("=", "==", "x", ".", ",", ";", "\\", "\"").map((pad) => world.valid + pad),
    fc.constantFrom("=", "x", "\"").map((pad) => pad + world.valid),
    fc.tuple(at, fc.constantFrom("\0", "\u0001", "\u007f")).map(([i, c]) => world.valid.slice(0, i) + c + world.valid.slice(i)),
    fc.tuple(at, fc.constantFrom("é", "中", "😀", "\u200b", "\ufeff", "ｍ")).map(([i, c]) =>
      world.valid.slice(0, i) + c + world.valid.slice(i + 1)
    ),
    fc.constantFrom("a".repeat(64 * 1024), world.valid.repeat(1200), world.valid.toLowerCase(), world.valid.toUpperCase()),
    fc.constant(world.revoked),
    fc.constant(BearerToken.mint()).map(() => BearerToken.mint()),
    fc.stringMatching(new RegExp(`^mcpsr_[A-Za-z0-9_-]{${body}}$`)),
    fc.string({ maxLength: 80, unit: "binary" }).map((s) => s.replace(/[\r\n]/g, "")),
    fc.constantFrom("", " ", "null", "undefined", "Bearer", `Bearer ${world.valid}`, "mcpsr_")
  )
}

const schemes = fc.constantFrom("Bearer", "bearer", "BEARER", "BeArEr")
const foreignSchemes = fc.constantFrom("Basic", "Token", "Digest", "MAC", "Bearer:", "Bearer\t", "Bear", "Bearerr", "OAuth", "B")

/** One request with exactly one flaw, and what the flaw is. */
const flawed = (world: World): fc.Arbitrary<{ readonly flaw: string; readonly request: RawRequest }> => {
  const host = `127.0.0.1:${world.port}`
  const base = (headers: ReadonlyArray<readonly [string, string]>, path = "/mcp") =>
    fc.constantFrom("GET", "POST", "DELETE", "OPTIONS", "PUT").map((method): RawRequest => ({
      method,
      path,
      headers: [["Host", host], ...headers]
    }))
  const oddHosts = fc.oneof(
    fc.constantFrom(
      "evil.example",
      `evil.example:${world.port}`,
      `127.0.0.1:${world.port + 1}`,
      "127.0.0.1",
      `localhost.evil.example:${world.port}`,
      `127.0.0.1:${world.port}.evil.example`,
      `127.0.0.1:${world.port}@evil.example`,
      "",
      "[::2]:80",
      `0.0.0.0:${world.port}`,
      `127.1:${world.port}`,
      `2130706433:${world.port}`,
      `ｌocalhost:${world.port}`
    ),
    fc.string({ maxLength: 40 }).filter((s) => !/[\r\n]/.test(s) && s.toLowerCase() !== host && s !== `localhost:${world.port}`)
  )
  const oddOrigins = fc.oneof(
    fc.constantFrom("null", "http://evil.example", `http://evil.example:${world.port}`, "file://", "http://localhost:1", "https://127.0.0.1.evil.example", "x", ""),
    fc.webUrl().filter((url) => !/^https?:\/\/(localhost|127\.0\.0\.1|\[::1\]):\d+$/i.test(url))
  )
  const validAuth = `Bearer ${world.valid}`
  return fc.oneof(
    fc.tuple(schemes, wrongToken(world)).chain(([scheme, token]) =>
      base([["Authorization", `${scheme} ${token}`]]).map((request) => ({ flaw: "wrong-token", request }))
    ),
    base([]).map((request) => ({ flaw: "no-credentials", request })),
    fc.tuple(foreignSchemes, fc.oneof(fc.constant(world.valid), wrongToken(world))).chain(([scheme, token]) =>
      base([["Authorization", `${scheme} ${token}`]]).map((request) => ({ flaw: "scheme", request }))
    ),
    fc.oneof(fc.constant(validAuth), wrongToken(world).map((t) => `Bearer ${t}`)).chain((other) =>
      base([["Authorization", validAuth], ["Authorization", other]]).map((request) => ({ flaw: "duplicate", request }))
    ),
    // `access_token` (also percent-encoded) is refused with or without a valid header.
    fc.tuple(fc.constantFrom("access_token", "access%5Ftoken", "x=1&access_token"), fc.boolean()).chain((
      [name, withHeader]
    ) =>
      base(withHeader ? [["Authorization", validAuth]] : [], `/mcp?${name}=${encodeURIComponent(world.valid)}`).map((
        request
      ) => ({ flaw: "query", request }))
    ),
    // Other spellings are not the RFC 6750 parameter: without a header they authenticate nothing.
    fc.constantFrom("ACCESS_TOKEN", "token", "access-token", "bearer").chain((name) =>
      base([], `/mcp?${name}=${encodeURIComponent(world.valid)}`).map((request) => ({ flaw: "query-variant", request }))
    ),
    oddHosts.map((odd): { flaw: string; request: RawRequest } => ({
      flaw: "host",
      request: { method: "POST", path: "/mcp", headers: odd === "" ? [["Authorization", validAuth]] : [["Host", odd], ["Authorization", validAuth]] }
    })),
    oddOrigins.chain((origin) =>
      base([["Origin", origin], ["Authorization", validAuth]]).map((request) => ({ flaw: "origin", request }))
    )
  )
}

/** What is wrong with a response to a flawed request, if anything. */
const problem = (flaw: string, request: RawRequest, response: RawResponse): string | undefined => {
  if (response.status >= 500) return `a ${response.status}`
  if (response.status < 400) return `accepted with ${response.status}`
  const challenge = response.headers["www-authenticate"]
  const sentAuthorization = request.headers.some(([name]) => name.toLowerCase() === "authorization")
  if (response.status === 401) {
    if (challenge === undefined) return "a 401 without WWW-Authenticate"
    if (!challenge.startsWith("Bearer realm=\"mcp\"")) return `a 401 with challenge ${challenge}`
    const error = /error="([^"]*)"/.exec(challenge)?.[1]
    if (!sentAuthorization && error !== undefined) return `no credentials, yet error="${error}"`
    if (sentAuthorization && error !== "invalid_token") return `a refused token without error="invalid_token": ${challenge}`
    if (JSON.parse(response.body).error?.code !== McpBearerAuth.jsonRpcErrorCodes.unauthorized) return "a 401 body without its JSON-RPC error"
  }
  // Node's own parser answers 431 to headers over 16 KB, before the guard runs.
  if (response.status === 431) return undefined
  if (flaw === "duplicate" && response.status !== 400) return `a duplicated Authorization got ${response.status}`
  if (flaw === "query" && response.status !== 400) return `a query-string token got ${response.status}`
  if ((flaw === "host" || flaw === "origin") && response.status !== 403 && response.status !== 400) {
    return `an odd ${flaw} got ${response.status}`
  }
  if (flaw === "no-credentials" && response.status !== 401) return `no credentials got ${response.status}`
  return undefined
}

const withServer = <A, E>(body: (world: World & { readonly registry: McpSessionRegistry.McpSessionRegistry["Service"] }) => Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const server = yield* HttpServer.HttpServer
    const registry = yield* McpSessionRegistry.McpSessionRegistry
    const port = server.address._tag === "UnixPathAddress" ? 0 : server.address.port
    const credential = yield* registry.issue({ threadId: "fuzz", providerInstanceId: "codex" })
    const gone = yield* registry.issue({ threadId: "fuzz", providerInstanceId: "claude" })
    yield* registry.revoke(gone.credentialId)
    return yield* body({ port, registry, valid: Redacted.value(credential.token), revoked: Redacted.value(gone.token) })
  }).pipe(Effect.provide(Served))

describe("hardening: the HTTP guard under fuzz", () => {
  it.live("10,000 generated flawed requests: no acceptance, no 5xx, correct challenges, the server stays up", () =>
    withServer((world) =>
      Effect.gen(function*() {
        const client = pool(world.port, 16)
        const seen = new Map<string, number>()
        const statuses = new Map<number, number>()
        let sent = 0
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(fc.array(flawed(world), { minLength: 50, maxLength: 50 }), async (batch) => {
              const responses = await client.run(batch.map((b) => b.request))
              sent += batch.length
              batch.forEach(({ flaw, request }, i) => {
                const response = responses[i]!
                seen.set(flaw, (seen.get(flaw) ?? 0) + 1)
                statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1)
                const wrong = problem(flaw, request, response)
                if (wrong !== undefined) {
                  throw new Error(`${flaw}: ${wrong}\n${JSON.stringify(request).slice(0, 500)}`)
                }
              })
            }),
            { numRuns: 200, seed: Number(process.env.HARDENING_SEED ?? 20261123), endOnFailure: true }
          )
        )
        assert.isAtLeast(sent, 10_000)
        // Every kind of flaw was tried, and refusals came in every family.
        for (const flaw of ["wrong-token", "no-credentials", "scheme", "duplicate", "query", "host", "origin"]) {
          assert.isAbove(seen.get(flaw) ?? 0, 100, flaw)
        }
        for (const status of [400, 401, 403]) assert.isAbove(statuses.get(status) ?? 0, 0, String(status))
        // Still up, over the same keep-alive pool, and a valid token still works.
        const [ok] = yield* Effect.promise(() =>
          client.run([{ method: "POST", path: "/mcp", headers: [["Host", `127.0.0.1:${world.port}`], ["Authorization", `Bearer ${world.valid}`]] }])
        )
        client.close()
        assert.strictEqual(ok!.status, 200)
        const listed = yield* world.registry.list
        assert.strictEqual(ok!.body, listed[0]!.credentialId)
        assert.lengthOf(listed, 1)
      })))

  it.live("100,000 wrong tokens through the guard: all refused, the registry unchanged, one lookup each", () =>
    Effect.gen(function*() {
      const registry = yield* McpSessionRegistry.McpSessionRegistry
      const credential = yield* registry.issue({ threadId: "t", providerInstanceId: "p" })
      const valid = Redacted.value(credential.token)
      let lookups = 0
      // The guard's view of the registry, counting every lookup it makes.
      const counted = { ...registry, resolve: (token: string) => (lookups++, registry.resolve(token)) }
      const guard = yield* McpBearerAuth.makeGuard({}, counted, 8080)
      const request = (authorization: string) =>
        HttpServerRequest.fromWeb(
          new Request("http://127.0.0.1:8080/mcp", { headers: { host: "127.0.0.1:8080", authorization } })
        )
      const random = seeded(3)
      const liveBefore = yield* metricValue("mcp_session_registry_credentials_live")
      let accepted = 0
      let refused401 = 0
      for (let i = 0; i < 100_000; i++) {
        const at = BearerToken.prefix.length + random.int(BearerToken.length - BearerToken.prefix.length)
        const token = i % 2 === 0 ? BearerToken.mint() : valid.slice(0, at) + alphabet[random.int(64)] + valid.slice(at + 1)
        const outcome = yield* guard.handle(
          request(`Bearer ${token === valid ? token + "x" : token}`),
          undefined,
          () => Effect.succeed(200),
          (rejection) => Effect.succeed(rejection.status)
        )
        if (outcome === 200) accepted++
        if (outcome === 401) refused401++
      }
      assert.strictEqual(accepted, 0)
      assert.strictEqual(refused401, 100_000)
      assert.strictEqual(lookups, 100_000)
      assert.strictEqual(yield* metricValue("mcp_session_registry_credentials_live"), liveBefore)
      assert.lengthOf(yield* registry.list, 1)
      // And the real one still passes.
      assert.strictEqual(
        yield* guard.handle(request(`Bearer ${valid}`), undefined, () => Effect.succeed(200), (r) => Effect.succeed(r.status)),
        200
      )
    }).pipe(Effect.provide(McpSessionRegistry.layer({ maxTombstones: 100 }))))
})
