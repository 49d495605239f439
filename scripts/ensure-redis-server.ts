/**
 * Makes sure `redis-server` is installed before the suite runs (`npm test`
 * runs this first): the Redis store's tests start their own throwaway
 * server and fail, never skip, without one.
 *
 * Found: nothing to do. Missing, as root on a machine with `apt-get`
 * (Debian, Ubuntu, CI): installs Debian's `redis-server` package. Otherwise:
 * exits 1 saying what to install.
 */
import { spawnSync } from "node:child_process"
import { redisServerBinary } from "../test/support/redis.ts"

const found = (): boolean => {
  try {
    redisServerBinary()
    return true
  } catch {
    return false
  }
}

const has = (command: string): boolean => spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0

const run = (args: ReadonlyArray<string>): boolean => {
  console.error(`$ ${args.join(" ")}`)
  const result = spawnSync(args[0]!, args.slice(1), {
    stdio: "inherit",
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" }
  })
  return result.status === 0
}

const help = "The Redis store's tests need redis-server (Redis 7 or Valkey). Install it, then run npm test again:\n" +
  "  Debian/Ubuntu:  sudo apt-get install -y redis-server\n" +
  "  Fedora:         sudo dnf install -y redis\n" +
  "  macOS:          brew install redis\n" +
  "or set REDIS_SERVER to the path of a redis-server binary."

if (!found()) {
  const root = typeof process.getuid === "function" && process.getuid() === 0
  if (root && has("apt-get")) {
    console.error("redis-server is missing: installing it with apt-get (the Redis store's tests need it).")
    if (!run(["apt-get", "install", "-y", "--no-install-recommends", "redis-server"])) {
      run(["apt-get", "update"])
      run(["apt-get", "install", "-y", "--no-install-recommends", "redis-server"])
    }
  }
  if (!found()) {
    console.error(root ? `Could not install redis-server.\n${help}` : `redis-server is missing.\n${help}`)
    process.exit(1)
  }
}
