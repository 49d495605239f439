/**
 * A throwaway `redis-server` for tests, examples and benchmarks: a free port
 * on 127.0.0.1, its own temporary directory, no persistence unless asked,
 * stopped by `stop()`. A missing binary is an error that says what to
 * install: Redis tests never skip silently.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { createConnection, createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

/** A running server. */
export interface RedisServer {
  readonly port: number
  /** `redis://127.0.0.1:<port>` */
  readonly url: string
  /** Freezes the server (SIGSTOP): connections stay open, nothing answers. */
  readonly freeze: () => void
  /** Thaws a frozen server (SIGCONT). */
  readonly thaw: () => void
  /** Stops the server process (SIGTERM), keeping its directory: with `persistent`, `start` brings the data back. */
  readonly kill: () => Promise<void>
  /** Starts it again on the same port and directory. */
  readonly start: () => Promise<void>
  /** Stops it and removes its directory. */
  readonly stop: () => Promise<void>
}

/** Where the binary is, or an error saying how to install it. */
export const redisServerBinary = (): string => {
  const fromEnv = process.env["REDIS_SERVER"]
  if (fromEnv !== undefined && fromEnv !== "") {
    if (existsSync(fromEnv)) return fromEnv
    throw new Error(`REDIS_SERVER is set to ${fromEnv}, which does not exist`)
  }
  for (const candidate of ["/usr/bin/redis-server", "/usr/local/bin/redis-server", "/opt/homebrew/bin/redis-server"]) {
    if (existsSync(candidate)) return candidate
  }
  const which = spawnSync("sh", ["-c", "command -v redis-server"], { encoding: "utf8" })
  const found = which.stdout.trim()
  if (which.status === 0 && found !== "") return found
  throw new Error(
    "redis-server was not found, and the Redis store's tests need it. Install it: " +
      "`apt-get install -y redis-server` on Debian or Ubuntu (npm test does this itself when run as root), " +
      "`brew install redis` on macOS, or set REDIS_SERVER to the binary's path."
  )
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

const answersPing = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port })
    let reply = ""
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(500, () => done(false))
    socket.on("error", () => done(false))
    socket.on("connect", () => socket.write("PING\r\n"))
    socket.on("data", (data) => {
      reply += data.toString()
      if (reply.includes("PONG")) done(true)
    })
  })

/**
 * Starts a server. `persistent: true` keeps an append-only file in its
 * directory, so `kill()` then `start()` is a restart that loses nothing.
 */
export const startRedisServer = async (options: { readonly persistent?: boolean } = {}): Promise<RedisServer> => {
  const binary = redisServerBinary()
  const dir = mkdtempSync(join(tmpdir(), "mcpsr-redis-"))
  let port = 0
  let child: ChildProcess | undefined
  let output = ""

  const launch = async (): Promise<void> => {
    const args = [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--dir",
      dir,
      "--save",
      "",
      "--appendonly",
      options.persistent === true ? "yes" : "no",
      "--appendfsync",
      "always",
      "--protected-mode",
      "yes",
      "--daemonize",
      "no",
      "--loglevel",
      "warning"
    ]
    const proc = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] })
    child = proc
    proc.stdout?.on("data", (data) => void (output += data.toString()))
    proc.stderr?.on("data", (data) => void (output += data.toString()))
    let exited = false
    proc.once("exit", () => void (exited = true))
    for (let i = 0; i < 200; i++) {
      if (exited) throw new Error(`redis-server exited at start: ${output.slice(-2000)}`)
      if (await answersPing(port)) return
      await new Promise((r) => setTimeout(r, 25))
    }
    proc.kill("SIGKILL")
    throw new Error(`redis-server did not answer on port ${port}: ${output.slice(-2000)}`)
  }

  // A port found free may be taken before redis binds it: try a few.
  for (let attempt = 0;; attempt++) {
    port = await freePort()
    try {
      await launch()
      break
    } catch (error) {
      if (attempt >= 4) {
        rmSync(dir, { recursive: true, force: true })
        throw error
      }
    }
  }

  const kill = (): Promise<void> =>
    new Promise((resolve) => {
      const proc = child
      if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return resolve()
      proc.kill("SIGCONT")
      proc.once("exit", () => resolve())
      proc.kill("SIGTERM")
      setTimeout(() => proc.kill("SIGKILL"), 5_000).unref()
    })

  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    freeze: () => void child?.kill("SIGSTOP"),
    thaw: () => void child?.kill("SIGCONT"),
    kill,
    start: launch,
    stop: async () => {
      await kill()
      rmSync(dir, { recursive: true, force: true })
    }
  }
  return server
}
