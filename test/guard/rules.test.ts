import { assert, describe, it } from "@effect/vitest"
import { BearerToken } from "../../src/index.ts"
import * as Rules from "../../src/guard/rules.ts"

const port = 4100
const host = `127.0.0.1:${port}`
const token = BearerToken.mint()

const compile = (options?: Rules.Options): Rules.Rules => {
  const rules = Rules.compile(options, port)
  if (rules instanceof Rules.GuardConfigError) throw rules
  return rules
}

// The token with its `i`-th character percent-encoded.
const escapeAt = (text: string, i: number): string =>
  `${text.slice(0, i)}%${text.charCodeAt(i).toString(16).toUpperCase()}${text.slice(i + 1)}`

const kindOf = (checked: string | Rules.Refusal): string => (typeof checked === "string" ? `token:${checked}` : checked.kind)

/** The same request through all three readers: they must agree. */
const everyReader = (
  rules: Rules.Rules,
  target: string,
  headers: ReadonlyArray<readonly [string, string]>
): string => {
  const raw = rules.checkRaw(target, headers.flat())
  const record: Record<string, string> = {}
  for (const [name, value] of headers) {
    const lower = name.toLowerCase()
    record[lower] = record[lower] === undefined ? value : `${record[lower]}, ${value}`
  }
  const fromRecord = rules.checkRecord(target, record)
  const web = new Headers()
  for (const [name, value] of headers) web.append(name, value)
  const url = target.startsWith("/") ? `http://${record["host"] ?? host}${target}` : target
  const fromWeb = rules.checkWeb(url, web)
  assert.strictEqual(kindOf(fromRecord), kindOf(raw), `record vs raw for ${target}`)
  assert.strictEqual(kindOf(fromWeb), kindOf(raw), `web vs raw for ${target}`)
  return kindOf(raw)
}

describe("guard rules", () => {
  const rules = compile()
  const authorized = [["Host", host], ["Authorization", `Bearer ${token}`]] as const

  it("hands over the token of a request that passes, from every reader alike", () => {
    assert.strictEqual(everyReader(rules, "/mcp", authorized), `token:${token}`)
    assert.strictEqual(everyReader(rules, "/mcp?x=1", authorized), `token:${token}`)
    assert.strictEqual(everyReader(rules, "/mcp", [["host", `LOCALHOST:${port}`], ["authorization", `bearer ${token}`]]), `token:${token}`)
  })

  it("remembers only accepted Hosts and Origins: a refused one right after an accepted one is still refused", () => {
    // One compiled guard serves request after request; nothing it remembers
    // from an accepted request may let the next, different one through.
    for (const fresh of [compile(), Rules.compile(undefined, undefined) as Rules.Rules]) {
      for (let round = 0; round < 3; round++) {
        assert.strictEqual(everyReader(fresh, "/mcp", authorized), `token:${token}`)
        assert.strictEqual(everyReader(fresh, "/mcp", [["Host", "evil.example"], ...authorized.slice(1)]), "host")
        assert.strictEqual(everyReader(fresh, "http://evil.example/mcp", authorized), "host")
        assert.strictEqual(everyReader(fresh, "/mcp", [...authorized, ["Origin", `http://${host}`]]), `token:${token}`)
        assert.strictEqual(everyReader(fresh, "/mcp", [...authorized, ["Origin", "http://evil.example"]]), "origin")
      }
    }
  })

  it("refuses two Host headers with 400, before judging either", () => {
    for (const second of [host, "evil.example"]) {
      assert.strictEqual(everyReader(rules, "/mcp", [["Host", host], ["Host", second], ...authorized.slice(1)]), "duplicate-host")
    }
    assert.strictEqual(rules.refusals["duplicate-host"].status, 400)
  })

  it("judges an absolute-form target by its own authority", () => {
    const headers = authorized
    assert.strictEqual(kindOf(rules.checkRaw("http://evil.example/mcp", headers.flat())), "host")
    assert.strictEqual(kindOf(rules.checkRaw(`HTTPS://evil.example:${port}/mcp`, headers.flat())), "host")
    assert.strictEqual(kindOf(rules.checkRaw(`http://${host}@evil.example/mcp`, headers.flat())), "host")
    assert.strictEqual(kindOf(rules.checkRaw(`ftp://${host}/mcp`, headers.flat())), "host")
    assert.strictEqual(kindOf(rules.checkRaw(`http://${host}/mcp`, headers.flat())), `token:${token}`)
    assert.strictEqual(kindOf(rules.checkRaw(`http://${host}`, headers.flat())), `token:${token}`)
    // A Web request's URL is its absolute target; with no Host header of its own, the URL stands for it.
    assert.strictEqual(kindOf(rules.checkWeb("http://evil.example/mcp", new Headers({ host }))), "host")
    assert.strictEqual(
      kindOf(rules.checkWeb(`http://${host}/mcp`, new Headers({ authorization: `Bearer ${token}` }))),
      `token:${token}`
    )
    assert.strictEqual(kindOf(rules.checkWeb("http://evil.example/mcp", new Headers())), "host")
  })

  it("refuses anything shaped like a token in the target: path, ;params, query, raw or percent-encoded", () => {
    const other = BearerToken.mint()
    const targets = [
      `/mcp/${token}`,
      `/${token}`,
      `/mcp;access_token=${token}`,
      `/mcp;${other}`,
      `/mcp?token=${token}`,
      `/mcp?x=1&y=${other}`,
      `/mcp/%6Dcpsr_${token.slice(6)}`,
      `/mcp/${escapeAt(token, 30)}`,
      `/mcp/%E0%A4%A/${escapeAt(token, 3)}`,
      `/mcp%zz?q=%${escapeAt(token, 20)}`,
      `http://${host}/mcp/${token}`
    ]
    for (const target of targets) {
      assert.strictEqual(everyReader(rules, target, authorized), "target-token", target)
    }
    // `access_token` by name keeps its own reason, in any spelling.
    assert.strictEqual(everyReader(rules, `/mcp?access_token=${token}`, authorized), "query-token")
    assert.strictEqual(everyReader(rules, `/mcp?access%5Ftoken=x`, authorized), "query-token")
    assert.strictEqual(everyReader(rules, `/mcp?%61ccess_token=x`, authorized), "query-token")
    // Near misses pass: too short, another prefix, a broken escape.
    for (const target of [`/mcp/${token.slice(0, 54)}`, `/mcp/MCPSR_${token.slice(6)}`, "/mcp?x=%", "/mcp/%zz", `/mcp?x=${"a".repeat(200)}`]) {
      assert.strictEqual(everyReader(rules, target, authorized), `token:${token}`, target)
    }
    const refusal = rules.refusals["target-token"]
    assert.strictEqual(refusal.status, 400)
    assert.strictEqual(refusal.body.error.code, Rules.jsonRpcErrorCodes.badRequest)
    assert.include(refusal.wwwAuthenticate, `error="invalid_request"`)
  })

  it("gives every refusal a JSON-RPC body with data.reason and data.error, and the headers to send", () => {
    const expected: Record<number, { readonly code: number; readonly title: string }> = {
      400: { code: -32600, title: "Bad request" },
      401: { code: -32001, title: "Unauthorized" },
      403: { code: -32003, title: "Forbidden" },
      413: { code: -32600, title: "Payload too large" },
      503: { code: -32004, title: "Service unavailable" }
    }
    for (const kind of Rules.rejectionKinds) {
      if (kind === "parse-error") continue
      const refusal = rules.refusals[kind]
      assert.strictEqual(refusal.kind, kind)
      assert.deepStrictEqual(JSON.parse(refusal.text), refusal.body)
      assert.strictEqual(refusal.body.jsonrpc, "2.0")
      assert.isNull(refusal.body.id)
      assert.strictEqual(refusal.body.error.data.reason, kind)
      assert.isString(refusal.body.error.data.error, kind)
      assert.strictEqual(refusal.body.error.code, expected[refusal.status]!.code, kind)
      assert.isTrue(refusal.body.error.message.startsWith(`${expected[refusal.status]!.title}: `), kind)
      assert.strictEqual(refusal.headers["content-type"], "application/json")
      assert.strictEqual(refusal.headers["cache-control"], "no-store")
      assert.strictEqual(refusal.headers["www-authenticate"], refusal.wwwAuthenticate)
    }
    const errors = Object.fromEntries(Rules.rejectionKinds.map((kind) => [kind, rules.refusals[kind].body.error.data.error]))
    assert.deepInclude(errors, {
      "duplicate-host": "invalid_request",
      "host": "forbidden",
      "origin": "forbidden",
      "no-credentials": "invalid_request",
      "scheme": "invalid_token",
      "unknown": "invalid_token",
      "insufficient-capability": "insufficient_scope",
      "store-unavailable": "temporarily_unavailable"
    })
    // RFC 6750 §3.1: no error code in the challenge of a request without credentials.
    assert.strictEqual(rules.refusals["no-credentials"].wwwAuthenticate, `Bearer realm="mcp"`)
    assert.isUndefined(rules.refusals.host.wwwAuthenticate)
    const unavailable = rules.refusals["store-unavailable"]
    assert.strictEqual(unavailable.status, 503)
    assert.strictEqual(unavailable.headers["retry-after"], "1")
    assert.isUndefined(unavailable.wwwAuthenticate)
  })

  it("has the body refusals in the same table: 413 body-too-large and 400 parse-error, without a challenge", () => {
    // A RejectionKind, in rejectionKinds, built like every other refusal:
    // a caller matching on data.reason sees every kind a guard can send.
    const kinds: ReadonlyArray<Rules.RejectionKind> = ["body-too-large", "parse-error"]
    assert.includeMembers([...Rules.rejectionKinds], [...kinds])
    const tooLarge = rules.refusals["body-too-large"]
    assert.strictEqual(tooLarge.status, 413)
    assert.deepStrictEqual(tooLarge.body.error, {
      code: -32600,
      message: "Payload too large: the request body exceeds maxBodySize",
      data: { reason: "body-too-large", error: "invalid_request" }
    })
    const parseError = rules.refusals["parse-error"]
    assert.strictEqual(parseError.status, 400)
    assert.deepStrictEqual(parseError.body.error, {
      code: Rules.jsonRpcErrorCodes.parseError,
      message: "Parse error: the body is not JSON",
      data: { reason: "parse-error", error: "invalid_request" }
    })
    for (const kind of kinds) {
      const refusal = rules.refusals[kind]
      assert.deepStrictEqual(JSON.parse(refusal.text), refusal.body)
      assert.isUndefined(refusal.wwwAuthenticate)
      assert.deepStrictEqual(refusal.headers, { "content-type": "application/json", "cache-control": "no-store" })
    }
  })

  it("judges what the registry answered", () => {
    const scope = {
      credentialId: "c",
      providerSessionId: "p",
      threadId: "t",
      providerInstanceId: "i",
      capabilities: ["read"],
      issuedAt: 0,
      lastUsedAt: 0,
      expiresAt: 1,
      idleExpiresAt: 1
    }
    assert.strictEqual(rules.judge(scope), scope)
    assert.strictEqual(rules.judge({ _tag: "InvalidCredential", reason: "revoked" }), rules.refusals.revoked)
    assert.strictEqual(rules.judge({ _tag: "StoreUnavailable" }), rules.refusals["store-unavailable"])
    const admin = compile({ requiredCapability: "admin" })
    assert.strictEqual(admin.judge(scope), admin.refusals["insufficient-capability"])
    assert.strictEqual(admin.judge({ ...scope, capabilities: ["admin"] }).constructor, Object)
  })

  it("refuses options that cannot work, as a value", () => {
    for (const options of [{ realm: "a\r\nb" }, { resourceMetadataUrl: "/x" }, { allowedHosts: [""] }, { requiredCapability: "\u2014" }]) {
      assert.instanceOf(Rules.compile(options, port), Rules.GuardConfigError)
    }
  })
})
