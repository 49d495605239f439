import { assert, describe, it } from "@effect/vitest"
import { inspect } from "node:util"
import { caller, toAuthInfo } from "../../src/guard/authInfo.ts"
import { BearerToken } from "../../src/index.ts"

const scope = {
  credentialId: "cred-1",
  providerSessionId: "ps-1",
  threadId: "thread-1",
  providerInstanceId: "codex",
  capabilities: ["read"],
  issuedAt: 0,
  lastUsedAt: 0,
  expiresAt: 1_700_000_000_999,
  idleExpiresAt: 1_700_000_000_000
}

describe("toAuthInfo", () => {
  it("is the SDK's AuthInfo, whose token is readable but printed by nothing", () => {
    const token = BearerToken.mint()
    const info = toAuthInfo(scope, token, new URL("https://mcp.example/mcp"))
    assert.strictEqual(info.token, token)
    assert.strictEqual(info.clientId, "codex")
    assert.deepStrictEqual(info.scopes, ["read"])
    assert.strictEqual(info.expiresAt, 1_700_000_000)
    assert.strictEqual(info.resource?.href, "https://mcp.example/mcp")
    assert.deepStrictEqual(caller(info), {
      credentialId: "cred-1",
      threadId: "thread-1",
      providerSessionId: "ps-1",
      providerInstanceId: "codex",
      idleExpiresAt: 1_700_000_000_000
    })
    for (const printed of [JSON.stringify(info), inspect(info, { depth: 5 }), JSON.stringify({ ...info }), Object.keys(info).join()]) {
      assert.notInclude(printed, token)
    }
    // The scopes are the caller's own copy: changing them changes no credential.
    info.scopes.push("admin")
    assert.deepStrictEqual(scope.capabilities, ["read"])
  })
})
