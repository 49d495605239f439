/**
 * The rule that keeps the docs' snippets from rotting, as a pure function over
 * Markdown text: every fenced code block is either a shell block of commands
 * or a copy of a file under `examples/`, named by an
 * `<!-- example: examples/<path> -->` line right above it. `test/docs.test.ts`
 * applies it to README.md and docs/*.md; keeping it free of the file system
 * lets the suite check the checker on crafted Markdown.
 */

/** One fenced code block of a Markdown document. */
export interface CodeBlock {
  /** 1-based line of the opening fence. */
  readonly line: number
  /** The info string's first word, `""` when there is none. */
  readonly lang: string
  /** The lines between the fences, joined with `\n` (no trailing newline). */
  readonly content: string
  /** The path named by the nearest non-blank line above, if it is an example marker. */
  readonly example: string | undefined
  /** 1-based line of that marker, if any. */
  readonly markerLine: number | undefined
}

/** One broken rule, worded for the failure message. */
export interface Violation {
  readonly line: number
  readonly problem: string
}

const markerPattern = /^<!--\s*example:\s*(\S+)\s*-->$/
const fencePattern = /^ {0,3}(`{3,}|~{3,})\s*([^\s`]*)/

/** Languages whose blocks are commands to type, not code to keep in a file. */
export const shellLanguages: ReadonlySet<string> = new Set(["sh", "bash"])

/**
 * Programs a shell block may start a line with. A line is a command when its
 * first word (after `VAR=value` prefixes) is one of these.
 */
export const commands: ReadonlySet<string> = new Set([
  "npm",
  "npx",
  "apt-get",
  "sudo",
  "brew",
  "git",
  "cd",
  "redis-server",
  "claude",
  "codex",
  "gemini",
  "opencode"
])

/** Every fenced code block of `markdown`, with the example marker above it, if any. */
export const codeBlocks = (markdown: string): ReadonlyArray<CodeBlock> => {
  const lines = markdown.split(/\r?\n/)
  const blocks: Array<CodeBlock> = []
  for (let i = 0; i < lines.length; i++) {
    const open = fencePattern.exec(lines[i]!)
    if (open === null) continue
    const fence = open[1]!
    const close = new RegExp(`^ {0,3}${fence[0] === "`" ? "`" : "~"}{${fence.length},}\\s*$`)
    let end = i + 1
    while (end < lines.length && !close.test(lines[end]!)) end++
    let above = i - 1
    while (above >= 0 && lines[above]!.trim() === "") above--
    const marker = above >= 0 ? markerPattern.exec(lines[above]!.trim()) : null
    blocks.push({
      line: i + 1,
      lang: open[2]!.toLowerCase(),
      content: lines.slice(i + 1, end).join("\n"),
      example: marker?.[1],
      markerLine: marker === null ? undefined : above + 1
    })
    i = end
  }
  return blocks
}

/** Every example marker of `markdown` with the 1-based line it is on. */
export const exampleMarkers = (markdown: string): ReadonlyArray<{ readonly line: number; readonly path: string }> =>
  markdown.split(/\r?\n/).flatMap((text, i) => {
    const marker = markerPattern.exec(text.trim())
    return marker === null ? [] : [{ line: i + 1, path: marker[1]! }]
  })

/** Whether a shell line is a command: `VAR=value` prefixes, then a known program. */
const isCommand = (line: string): boolean => {
  const words = line.trim().split(/\s+/)
  while (words.length > 0 && /^[A-Za-z_][A-Za-z0-9_]*=\S*$/.test(words[0]!)) words.shift()
  return words.length > 0 && commands.has(words[0]!)
}

/**
 * Checks one document. `readExample(path)` returns the file's text, or
 * `undefined` when there is no such file.
 */
export const check = (
  markdown: string,
  readExample: (path: string) => string | undefined
): ReadonlyArray<Violation> => {
  const violations: Array<Violation> = []
  const blocks = codeBlocks(markdown)
  for (const block of blocks) {
    if (block.example === undefined) {
      if (block.lang === "") {
        violations.push({ line: block.line, problem: "a code block without a language" })
      } else if (!shellLanguages.has(block.lang)) {
        violations.push({
          line: block.line,
          problem: `a ${block.lang} block without an <!-- example: examples/<path> --> line above it`
        })
      } else {
        for (const text of block.content.split("\n")) {
          if (text.trim() === "" || text.trim().startsWith("#")) continue
          if (!isCommand(text)) {
            violations.push({
              line: block.line,
              problem: `a ${block.lang} block holds something that is not a command: ${JSON.stringify(text)}`
            })
          }
        }
      }
      continue
    }
    if (!/^examples\/[^\s]+$/.test(block.example) || block.example.split("/").includes("..")) {
      violations.push({ line: block.line, problem: `the marker names ${block.example}, not a file under examples/` })
      continue
    }
    const file = readExample(block.example)
    if (file === undefined) {
      violations.push({ line: block.line, problem: `the marker names ${block.example}, which does not exist` })
    } else if (file.replace(/\r?\n$/, "") !== block.content) {
      violations.push({ line: block.line, problem: `the block differs from ${block.example}` })
    }
  }
  // A marker must sit right above a block; a stray one usually means a block was edited away.
  const used = new Set(blocks.map((b) => b.markerLine))
  for (const marker of exampleMarkers(markdown)) {
    if (!used.has(marker.line)) {
      violations.push({ line: marker.line, problem: `the marker for ${marker.path} has no code block under it` })
    }
  }
  return violations
}
