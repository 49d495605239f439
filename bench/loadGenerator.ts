/**
 * The HTTP load generator the guard and Redis families share: `load.ts` in a
 * child process of its own, so the generator's work never runs on the
 * server's event loop, driven over IPC one load at a time.
 */
import * as Effect from "effect/Effect"
import { type ChildProcess, fork } from "node:child_process"
import { fileURLToPath } from "node:url"
import type { LoadRequest, LoadResult } from "./load.ts"
import { execArgv } from "./runtime.ts"

/** A load generator in a child process of its own, for the scope. */
export const loadGenerator = Effect.acquireRelease(
  Effect.sync(() =>
    fork(fileURLToPath(new URL("./load.ts", import.meta.url)), [], {
      execArgv: [...execArgv],
      stdio: ["ignore", "inherit", "inherit", "ipc"]
    })
  ),
  (child) => Effect.sync(() => child.kill())
)

/** Runs one load on `child`; fails if the generator reports an error or exits first. */
export const load = (child: ChildProcess, request: LoadRequest): Effect.Effect<LoadResult, Error> =>
  Effect.callback<LoadResult, Error>((resume) => {
    const onMessage = (message: LoadResult | { readonly error: string }) => {
      child.off("exit", onExit)
      resume("error" in message ? Effect.fail(new Error(message.error)) : Effect.succeed(message))
    }
    const onExit = (code: number | null) => {
      child.off("message", onMessage)
      resume(Effect.fail(new Error(`load generator exited with ${code}`)))
    }
    child.once("message", onMessage)
    child.once("exit", onExit)
    child.send(request)
  })
