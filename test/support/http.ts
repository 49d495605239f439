/**
 * A raw HTTP client for the guard tests: `node:http`, because `fetch` will not
 * send a forged `Host` or two `Authorization` headers, which is exactly what
 * the guard must refuse. Every request uses its own connection, so a server
 * shuts down without waiting for idle keep-alive sockets.
 */
import { serve } from "@hono/node-server"
import { Effect } from "effect"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import type { NodeBindings } from "../../src/guard/index.ts"

/** What came back. */
export interface RawResponse {
  readonly status: number
  readonly headers: Http.IncomingHttpHeaders
  readonly body: string
}

/** Header values; an array sends the header once per value. */
export type RawHeaders = Record<string, string | ReadonlyArray<string>>

/** Sends one request to `127.0.0.1:port` and reads the whole response. */
export const rawRequest = (options: {
  readonly port: number
  readonly path: string
  readonly method?: string
  readonly headers?: RawHeaders
  readonly body?: string
}): Effect.Effect<RawResponse> =>
  Effect.callback<RawResponse>((resume) => {
    const request = Http.request({
      host: "127.0.0.1",
      port: options.port,
      path: options.path,
      method: options.method ?? "GET",
      agent: false,
      headers: options.headers as Http.OutgoingHttpHeaders
    }, (response) => {
      const chunks: Array<Buffer> = []
      response.on("data", (chunk: Buffer) => chunks.push(chunk))
      response.on("end", () =>
        resume(Effect.succeed({
          status: response.statusCode ?? 0,
          headers: response.headers,
          body: Buffer.concat(chunks).toString("utf8")
        })))
    })
    request.on("error", (error) => resume(Effect.die(error)))
    request.end(options.body)
  })

/** The headers of a Streamable HTTP MCP POST. */
export const mcpPostHeaders = {
  "content-type": "application/json",
  "accept": "application/json, text/event-stream"
} as const

/**
 * Whether `@hono/node-server` has built this request's Web headers (it keeps
 * them under a Symbol of its own once asked for them).
 */
export const webHeadersBuilt = (request: Request): boolean =>
  Object.getOwnPropertySymbols(request).some((s) => (request as unknown as Record<symbol, unknown>)[s] instanceof Headers)

/** A `@hono/node-server` listening on 127.0.0.1 at a free port, and how to stop it at once. */
export const listenHono = async (
  fetch: (request: Request, env: NodeBindings) => Response | Promise<Response>
): Promise<{ readonly port: number; readonly close: () => void }> => {
  const server = serve({ hostname: "127.0.0.1", port: 0, fetch }) as Http.Server
  await new Promise((resolve) => server.once("listening", resolve))
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      server.closeAllConnections()
      server.close()
    }
  }
}
