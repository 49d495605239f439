import { EventEmitter } from "node:events"
import { Effect, ManagedRuntime } from "effect"
import { McpSessionRegistry } from "mcp-session-registry"

// In Electron: `import { powerMonitor } from "electron"`. Here a stand-in that
// emits the same two events, so the example runs anywhere.
const powerMonitor = new EventEmitter()

const runtime = ManagedRuntime.make(McpSessionRegistry.layer({ idleTimeout: "30 minutes", idleClock: "awake" }))
const registry = await runtime.runPromise(Effect.service(McpSessionRegistry.McpSessionRegistry))

// On macOS and Windows the monotonic clock counts sleep; the host tells the
// registry, so the time asleep never counts as idle. On Linux this is harmless.
powerMonitor.on("suspend", () => void runtime.runPromise(registry.reportPower("suspend")))
powerMonitor.on("resume", () => void runtime.runPromise(registry.reportPower("resume")))

const credential = await runtime.runPromise(registry.issue({ threadId: "thread-1", providerInstanceId: "codex" }))
powerMonitor.emit("suspend")
powerMonitor.emit("resume")
const info = await runtime.runPromise(registry.get(credential.credentialId))
console.log(`still live after the reported sleep: ${info._tag === "Some"}`)
await runtime.dispose()
