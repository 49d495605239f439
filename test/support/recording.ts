/**
 * A tracer that keeps every span it starts, and a logger that keeps every
 * line it is given, for tests that read what spans and logs carry (names,
 * attributes, events, messages, causes, annotations) after a session.
 */
import { inspect } from "node:util"
import { type Layer, Logger, References, Tracer } from "effect"

export const recordingTracer = (): { readonly tracer: Tracer.Tracer; readonly spans: Array<Tracer.NativeSpan> } => {
  const spans: Array<Tracer.NativeSpan> = []
  const tracer = Tracer.make({
    span(options) {
      const span = new Tracer.NativeSpan(options)
      spans.push(span)
      return span
    }
  })
  return { tracer, spans }
}

/** A logger that keeps each line as text: its message, cause and annotations, fully inspected. */
export const recordingLogger = (): { readonly logger: Logger.Logger<unknown, void>; readonly lines: Array<string> } => {
  const lines: Array<string> = []
  const logger = Logger.make((options) => {
    lines.push(inspect({
      message: options.message,
      cause: options.cause,
      annotations: options.fiber.getRef(References.CurrentLogAnnotations)
    }, { depth: 10 }))
  })
  return { logger, lines }
}

/** One log line as a test reads it: level, message text and annotations. */
export interface LoggedLine {
  readonly level: string
  readonly text: string
  readonly annotations: Record<string, unknown>
}

/** A logger layer that keeps each line's level, text and annotations, in order. */
export const capturingLogs = (): { readonly lines: Array<LoggedLine>; readonly layer: Layer.Layer<never> } => {
  const lines: Array<LoggedLine> = []
  const logger = Logger.make((options) => {
    lines.push({
      level: options.logLevel,
      text: Array.isArray(options.message) ? options.message.map(String).join(" ") : String(options.message),
      annotations: options.fiber.getRef(References.CurrentLogAnnotations)
    })
  })
  return { lines, layer: Logger.layer([logger]) }
}
