/**
 * docs/guards.md's table of refusals names every kind a guard can send, with
 * the status, `data.error` and JSON-RPC code the rules really give it.
 */
import { assert, describe, it } from "@effect/vitest"
import { readFileSync } from "node:fs"
import * as Rules from "../../src/guard/rules.ts"

const doc = readFileSync(new URL("../../docs/guards.md", import.meta.url), "utf8")

// The rows of the table under "## Statuses and bodies": reasons, status, data.error, code.
const rows = (): ReadonlyArray<{ readonly reasons: ReadonlyArray<string>; readonly status: number; readonly error: string; readonly code: number }> => {
  const section = doc.slice(doc.indexOf("## Statuses and bodies"))
  const table = section.slice(0, section.indexOf("\n\n", section.indexOf("| `data.reason`")))
  return table.split("\n").filter((line) => line.startsWith("| `")).map((line) => {
    const cells = line.split("|").slice(1, -1).map((cell) => cell.trim())
    // The reasons are the backticked words before any parenthesis.
    const reasons = [...cells[0]!.split("(")[0]!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!)
    return { reasons, status: Number(cells[1]), error: cells[2]!.replace(/`/g, ""), code: Number(cells[3]) }
  }).filter((row) => Number.isInteger(row.status)) // not the header
}

describe("docs/guards.md", () => {
  it("lists every RejectionKind with its status, data.error and JSON-RPC code", () => {
    const rules = Rules.compile(undefined, 3000) as Rules.Rules
    const listed = rows()
    for (const kind of Rules.rejectionKinds) {
      const row = listed.find((r) => r.reasons.includes(kind))
      assert.isDefined(row, `${kind} is missing from the table`)
      const refusal = rules.refusals[kind]
      assert.strictEqual(row!.status, refusal.status, kind)
      assert.strictEqual(row!.error, refusal.body.error.data.error, kind)
      assert.strictEqual(row!.code, refusal.body.error.code, kind)
    }
    // And nothing the rules do not know.
    for (const row of listed) for (const reason of row.reasons) assert.include(Rules.rejectionKinds, reason)
  })
})
