/**
 * The registry's metrics, shared by every store: one gauge of live
 * credentials and counters of issues, lookups and removals, read from the
 * store's own tallies when a snapshot is taken (nothing per request).
 */
import type * as Context from "effect/Context"
import * as Metric from "effect/Metric"
import type { InvalidReason } from "../Credential.ts"
import type { RevocationReason } from "../Revocation.ts"

/** The tallies a store keeps for its metrics. */
export interface Tallies {
  /** Live credentials now: what `list` would return. */
  readonly live: () => number
  readonly issuedTotal: { readonly value: number }
  readonly resolvedTotal: Readonly<Record<"ok" | InvalidReason, number>>
  readonly revokedTotal: Readonly<Record<RevocationReason, number>>
}

/** Fresh zeroed tallies for a store (all but `live`). */
export const emptyTallies = () => ({
  issuedTotal: { value: 0 },
  resolvedTotal: { ok: 0, missing: 0, malformed: 0, unknown: 0, revoked: 0, idle: 0, expired: 0 } as Record<
    "ok" | InvalidReason,
    number
  >,
  revokedTotal: {
    revoked: 0,
    "session-stopped": 0,
    replaced: 0,
    idle: 0,
    expired: 0,
    shutdown: 0
  } as Record<RevocationReason, number>
})

/** Registers every series in `context`; remove the registrations at shutdown. */
export const register = (tallies: Tallies, context: Context.Context<never>): Array<Metric.Registration> => {
  const counter = (name: string, description: string, attributes: Record<string, string>, read: () => number) =>
    Metric.registerUnsafe(Metric.counter(name, { description, attributes, incremental: true }), context, {
      get: () => ({ count: read(), incremental: true }),
      update: () => {},
      modify: () => {}
    })
  return [
    Metric.registerUnsafe(
      Metric.gauge("mcp_session_registry_credentials_live", {
        description: "Live credentials: the ones `list` would return"
      }),
      context,
      { get: () => ({ value: tallies.live() }), update: () => {}, modify: () => {} }
    ),
    counter("mcp_session_registry_credentials_issued_total", "Credentials issued", {}, () => tallies.issuedTotal.value),
    ...(Object.keys(tallies.resolvedTotal) as Array<keyof Tallies["resolvedTotal"]>).map((outcome) =>
      counter(
        "mcp_session_registry_resolutions_total",
        "Token lookups, by outcome",
        { outcome },
        () => tallies.resolvedTotal[outcome]
      )
    ),
    ...(Object.keys(tallies.revokedTotal) as Array<RevocationReason>).map((reason) =>
      counter(
        "mcp_session_registry_revocations_total",
        "Credentials that left the registry, by reason",
        { reason },
        () => tallies.revokedTotal[reason]
      )
    )
  ]
}
