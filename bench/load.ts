/**
 * The load generator of measurement 5, run as a child process so it has a
 * core of its own: autocannon against one URL, keep-alive connections, every
 * request carrying the next token of the list in its `Authorization` header.
 * Requests, tokens included, arrive over the IPC channel, never on a command
 * line; the process serves one request after another until disconnected.
 */
import autocannon from "autocannon"

/** What the main thread asks for. */
export interface LoadRequest {
  readonly url: string
  readonly tokens: ReadonlyArray<string>
  readonly connections: number
  /** How long to load, or, when `amount` is set, nothing. */
  readonly seconds: number
  /** Send this many requests instead of loading for `seconds` (smoke runs). */
  readonly amount?: number | undefined
}

/** What the child sends back. */
export interface LoadResult {
  readonly requestsPerSecond: number
  readonly requests: number
  readonly non2xx: number
  readonly errors: number
}

const run = (request: LoadRequest): Promise<LoadResult> => {
  // One prebuilt request per token, handed out in turn: building one per
  // request (or giving autocannon the whole list) cost the client more CPU.
  let next = 0
  const { host, pathname: path } = new URL(request.url)
  const requests = request.tokens.map((token) => ({
    method: "GET" as const,
    path,
    headers: { host, authorization: `Bearer ${token}` }
  }))
  return new Promise((resolve, reject) => {
    autocannon({
      url: request.url,
      connections: request.connections,
      ...(request.amount === undefined ? { duration: request.seconds } : { amount: request.amount }),
      requests: [{ setupRequest: () => requests[next++ % requests.length]! }]
    }, (error, result) => {
      if (error) return reject(error)
      resolve({
        requestsPerSecond: result.requests.total / result.duration,
        requests: result.requests.total,
        non2xx: result.non2xx,
        errors: result.errors
      })
    })
  })
}

process.on("message", (request: LoadRequest) => {
  run(request).then(
    (result) => process.send?.(result),
    (error: unknown) => process.send?.({ error: String(error) })
  )
})
