/**
 * Reading and checking an `issue` request, shared by every store.
 *
 * A request is read once into a `CheckedRequest`, so no later read of the
 * caller's object (a getter, a proxy) can change what was checked.
 */

/** The longest thread id, provider instance id or capability accepted. */
export const maxIdLength = 512

// A surrogate without its partner. Redis stores keys and values as UTF-8,
// which has no encoding for one: node-redis writes U+FFFD instead, so two
// different ids would become one thread there.
const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/** Whether `value` can name a thread or provider instance: non-empty, bounded, well-formed Unicode. */
export const isId = (value: unknown): value is string =>
  typeof value === "string" && value.length > 0 && value.length <= maxIdLength && !loneSurrogate.test(value)

/** A request as read once and checked. */
export interface CheckedRequest {
  readonly threadId: string
  readonly providerInstanceId: string
  readonly capabilities: ReadonlyArray<string> | undefined
  readonly replace: boolean
}

/** Why a request was refused: the field and what is wrong with it. */
export interface RequestProblem {
  readonly field: string
  readonly detail: string
}

/** Reads and checks a request; a `RequestProblem` (it has `detail`) when it cannot be honoured. */
export const validate = (request: unknown): CheckedRequest | RequestProblem => {
  if (request === null || typeof request !== "object") return { field: "request", detail: "must be an object" }
  const given = request as {
    readonly threadId?: unknown
    readonly providerInstanceId?: unknown
    readonly capabilities?: unknown
    readonly replace?: unknown
  }
  // Every field is read exactly once: a getter that throws is bad input like
  // any other, and one that answers differently on a second read cannot slip
  // an unchecked value past this point.
  let threadId: unknown
  let providerInstanceId: unknown
  let capabilities: unknown
  let replace: unknown
  try {
    const listed: unknown = given.capabilities
    threadId = given.threadId
    providerInstanceId = given.providerInstanceId
    capabilities = Array.isArray(listed) ? Array.from(listed as Array<unknown>) : listed
    replace = given.replace
  } catch {
    return { field: "request", detail: "could not be read" }
  }
  const badId = checkId("threadId", threadId) ?? checkId("providerInstanceId", providerInstanceId)
  if (badId !== undefined) return badId
  if (
    capabilities !== undefined &&
    (!Array.isArray(capabilities) ||
      capabilities.some((c) => typeof c !== "string" || c.length > maxIdLength || loneSurrogate.test(c)))
  ) {
    return { field: "capabilities", detail: `must be an array of well-formed strings of at most ${maxIdLength} characters` }
  }
  return {
    threadId: threadId as string,
    providerInstanceId: providerInstanceId as string,
    capabilities: capabilities as ReadonlyArray<string> | undefined,
    replace: replace !== false
  }
}

/** Whether `validate` refused the request. */
export const isProblem = (checked: CheckedRequest | RequestProblem): checked is RequestProblem => "detail" in checked

const checkId = (field: "threadId" | "providerInstanceId", value: unknown): RequestProblem | undefined =>
  typeof value !== "string" || value.length === 0
    ? { field, detail: "must be a non-empty string" }
    : value.length > maxIdLength
    ? { field, detail: `must be at most ${maxIdLength} characters` }
    : loneSurrogate.test(value)
    ? { field, detail: "must be well-formed Unicode (a lone surrogate cannot be stored)" }
    : undefined
