/**
 * Pinning a server and its load generator to CPUs of their own, for the runs
 * that measure a server's CPU time per request. Left to the scheduler, the
 * two processes (and V8's helper threads) trade CPUs and caches, which moved
 * the bare route's figures by a fifth from one run to the next.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { execFileSync } from "node:child_process"
import { availableParallelism } from "node:os"

/** The affinity mask `taskset -p` reports for a process, as hex (`3` for CPUs 0 and 1). */
export const maskOf = (pid: number): string => {
  const said = execFileSync("taskset", ["-p", String(pid)], { encoding: "utf8" })
  const mask = /:\s*([0-9a-f]+)\s*$/i.exec(said)?.[1]
  if (mask === undefined) throw new Error(`taskset said ${JSON.stringify(said)}`)
  return mask
}

// The CPUs a mask allows, lowest first.
const cpusOf = (mask: string): Array<number> => {
  const bits = BigInt(`0x${mask}`)
  const cpus: Array<number> = []
  for (let cpu = 0; bits >> BigInt(cpu) !== 0n; cpu++) if ((bits >> BigInt(cpu)) & 1n) cpus.push(cpu)
  return cpus
}

// Every thread of `pid` onto `cpus` (a mask, or a list with `-c`).
const pin = (pid: number, cpus: string, list: boolean): void => {
  execFileSync("taskset", ["-a", "-p", ...(list ? ["-c"] : []), cpus, String(pid)], { stdio: "ignore" })
}

// This process back onto `mask`. A failure leaves it on one CPU: slower
// figures after, not wrong ones.
const restore = (mask: string): void => {
  try {
    pin(process.pid, mask, false)
  } catch {
    // Nothing more to do.
  }
}

/**
 * Pins this process to the first CPU it may run on and `child` to the second
 * for the scope, and gives this process its affinity back after. Succeeds
 * with whether it pinned: `false` with fewer than two CPUs, or where
 * `taskset` is missing or refused.
 */
export const pinApart = (child: { readonly pid?: number | undefined }): Effect.Effect<boolean, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync((): string | undefined => {
      if (availableParallelism() < 2 || child.pid === undefined) return undefined
      let mask: string
      try {
        mask = maskOf(process.pid)
      } catch {
        return undefined
      }
      const cpus = cpusOf(mask)
      if (cpus.length < 2) return undefined
      try {
        pin(process.pid, String(cpus[0]), true)
        pin(child.pid, String(cpus[1]), true)
        // `taskset -a` succeeds without doing anything for a process gone
        // already: only the child's mask read back says it was pinned.
        if (maskOf(child.pid) !== (1n << BigInt(cpus[1]!)).toString(16)) throw new Error("the load generator was not pinned")
        return mask
      } catch {
        // Pinned half-way: the bench gets its CPUs back at once.
        restore(mask)
        return undefined
      }
    }),
    (mask) =>
      Effect.sync(() => {
        if (mask !== undefined) restore(mask)
      })
  ).pipe(Effect.map((mask) => mask !== undefined))
