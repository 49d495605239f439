/**
 * The log lines a refused token leaves, the same for every store.
 *
 * A refusal of a token that once was valid is what a host needs to see when
 * an agent loses its tools, so it gets one warning per credential. Tokens that
 * never were valid are only counted and summarized at most once a minute, so
 * spraying tokens cannot flood the log. Neither line ever holds a token or
 * its digest.
 */
import * as Effect from "effect/Effect"
import { counted } from "./plural.ts"

/** How often, at most, never-valid refusals are summarized. */
export const neverValidSummaryMillis = 60_000

/** What the warning about a refused once-valid credential says. */
export interface OnceValidRefusal {
  readonly credentialId: string
  readonly providerSessionId: string
  readonly threadId: string
  readonly providerInstanceId: string
  /** What the caller was told. */
  readonly reason: string
  /** Why the credential left the registry. */
  readonly leftAs: string
}

/** The one warning a refused once-valid credential gets. */
export const onceValidWarning = (refusal: OnceValidRefusal): Effect.Effect<void> =>
  Effect.logWarning(
    `Refused the bearer token of credential ${refusal.credentialId} (thread ${
      JSON.stringify(refusal.threadId)
    }, provider instance ${JSON.stringify(refusal.providerInstanceId)}): ${refusal.reason}`
  ).pipe(Effect.annotateLogs({ ...refusal }))

/** The running totals of never-valid refusals a summary reads. */
export interface NeverValidTotals {
  readonly missing: number
  readonly malformed: number
  readonly unknown: number
}

/**
 * Summarizes the never-valid refusals counted since the last summary. Called
 * by a store when a refusal comes at or after the due time it keeps; returns
 * the next due time: a minute on after a summary, or at once (`-Infinity`)
 * when there was nothing to say, so the first refusal after a quiet spell is
 * reported without delay.
 */
export const makeNeverValidSummary = (
  totals: NeverValidTotals,
  log: (line: Effect.Effect<void>) => void
): (at: number) => number => {
  const summarizedAt = { missing: 0, malformed: 0, unknown: 0 }
  return (at) => {
    const missing = totals.missing - summarizedAt.missing
    const malformed = totals.malformed - summarizedAt.malformed
    const unknown = totals.unknown - summarizedAt.unknown
    const refused = missing + malformed + unknown
    if (refused === 0) return -Infinity
    summarizedAt.missing = totals.missing
    summarizedAt.malformed = totals.malformed
    summarizedAt.unknown = totals.unknown
    const parts = [[unknown, "unknown"], [malformed, "malformed"], [missing, "missing"]] as const
    log(
      Effect.logWarning(
        `Refused ${counted(refused, "bearer token")} that ${refused === 1 ? "was" : "were"} never valid (${
          parts.filter(([n]) => n > 0).map(([n, reason]) => `${n} ${reason}`).join(", ")
        }); at most one such summary a minute`
      ).pipe(Effect.annotateLogs({ missing, malformed, unknown }))
    )
    return at + neverValidSummaryMillis
  }
}
