/**
 * A raw HTTP/1.1 keep-alive client for the guard fuzz and the load script.
 *
 * `node:http` refuses to send what an attacker would send (NUL and non-Latin-1
 * characters in a header, a missing `Host`), so requests are written as bytes
 * on plain sockets and the responses parsed here. Each connection is kept
 * alive across requests and replaced when the server closes it (as Node does
 * after answering a request its parser rejected).
 */
import * as Net from "node:net"

/** One request, as raw as it goes on the wire. */
export interface RawRequest {
  readonly method: string
  readonly path: string
  /** Sent in order; a name may repeat. Values are written as UTF-8 bytes. */
  readonly headers: ReadonlyArray<readonly [string, string]>
  /** Written after the head as is; its `Content-Length` is added unless `headers` has one. */
  readonly body?: string | undefined
}

/** What came back. */
export interface RawResponse {
  readonly status: number
  /** Lower-cased names; repeated headers joined with ", ". */
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

const encode = (request: RawRequest): Buffer => {
  let head = `${request.method} ${request.path} HTTP/1.1\r\n`
  for (const [name, value] of request.headers) head += `${name}: ${value}\r\n`
  if (request.body === undefined) return Buffer.from(head + "\r\n", "utf8")
  const body = Buffer.from(request.body, "utf8")
  if (!request.headers.some(([name]) => name.toLowerCase() === "content-length")) {
    head += `Content-Length: ${body.length}\r\n`
  }
  return Buffer.concat([Buffer.from(head + "\r\n", "utf8"), body])
}

/** Parses one complete response at the start of `buffer`, or `undefined` while some of it is missing. */
export const parse = (buffer: Buffer): { readonly response: RawResponse; readonly used: number } | undefined => {
  const end = buffer.indexOf("\r\n\r\n")
  if (end === -1) return undefined
  const lines = buffer.subarray(0, end).toString("latin1").split("\r\n")
  const status = Number(lines[0]!.split(" ")[1])
  const headers: Record<string, string> = {}
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":")
    const name = line.slice(0, colon).trim().toLowerCase()
    const value = line.slice(colon + 1).trim()
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`
  }
  let at = end + 4
  if (headers["transfer-encoding"]?.toLowerCase() === "chunked") {
    const chunks: Array<Buffer> = []
    while (true) {
      const lineEnd = buffer.indexOf("\r\n", at)
      if (lineEnd === -1) return undefined
      const size = parseInt(buffer.subarray(at, lineEnd).toString("latin1"), 16)
      if (buffer.length < lineEnd + 2 + size + 2) return undefined
      chunks.push(buffer.subarray(lineEnd + 2, lineEnd + 2 + size))
      at = lineEnd + 2 + size + 2
      if (size === 0) break
    }
    return { response: { status, headers, body: Buffer.concat(chunks).toString("utf8") }, used: at }
  }
  const length = Number(headers["content-length"] ?? 0)
  if (buffer.length < at + length) return undefined
  return {
    response: { status, headers, body: buffer.subarray(at, at + length).toString("utf8") },
    used: at + length
  }
}

/** One keep-alive connection that sends requests one after another. */
class Connection {
  private socket: Net.Socket | undefined
  private buffer: Buffer = Buffer.alloc(0)
  private waiting: ((result: RawResponse | Error) => void) | undefined
  /** How many sockets this connection has opened: more than one means the server closed some. */
  opened = 0

  constructor(private readonly port: number) {}

  private connect(): Net.Socket {
    const socket = Net.connect({ host: "127.0.0.1", port: this.port, noDelay: true })
    this.opened++
    this.buffer = Buffer.alloc(0)
    socket.on("data", (chunk: Buffer) => {
      if (this.socket !== socket) return
      this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk])
      const parsed = parse(this.buffer)
      if (parsed === undefined || this.waiting === undefined) return
      this.buffer = this.buffer.subarray(parsed.used)
      const resume = this.waiting
      this.waiting = undefined
      if (parsed.response.headers["connection"]?.toLowerCase() === "close") this.drop(socket)
      resume(parsed.response)
    })
    const fail = (error: Error) => {
      // A socket already dropped after its last response has nothing pending.
      if (this.socket !== socket) return
      this.drop(socket)
      const resume = this.waiting
      this.waiting = undefined
      resume?.(error)
    }
    socket.on("error", fail)
    socket.on("close", () => fail(new Error("connection closed before a response")))
    return socket
  }

  private drop(socket: Net.Socket): void {
    if (this.socket === socket) this.socket = undefined
    socket.destroy()
  }

  send(request: RawRequest): Promise<RawResponse> {
    return new Promise((resolve, reject) => {
      if (this.socket === undefined) this.socket = this.connect()
      this.waiting = (result) => (result instanceof Error ? reject(result) : resolve(result))
      this.socket.write(encode(request))
    })
  }

  close(): void {
    if (this.socket !== undefined) this.drop(this.socket)
  }
}

/**
 * A pool of keep-alive connections to `127.0.0.1:port`: `run` sends requests
 * with at most `connections` in flight and returns the responses in order.
 */
export const pool = (port: number, connections: number) => {
  const all = Array.from({ length: connections }, () => new Connection(port))
  const run = async (requests: ReadonlyArray<RawRequest>): Promise<Array<RawResponse>> => {
    const responses = new Array<RawResponse>(requests.length)
    let next = 0
    await Promise.all(all.map(async (connection) => {
      while (next < requests.length) {
        const i = next++
        responses[i] = await connection.send(requests[i]!)
      }
    }))
    return responses
  }
  return {
    run,
    /** Sockets opened in all, beyond one per connection. */
    reconnects: () => all.reduce((sum, c) => sum + Math.max(0, c.opened - 1), 0),
    close: () => all.forEach((c) => c.close())
  }
}
