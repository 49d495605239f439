/**
 * The figures part of docs/benchmarks.md, rendered from a results file, so
 * the page always shows the committed run: `npm run bench:docs` rewrites it
 * (a full `npm run bench` does too), and test/docs.test.ts fails when the page
 * and bench/results.json disagree.
 */
import { readFileSync, writeFileSync } from "node:fs"
import * as RedisFamily from "./redis.ts"
import * as Report from "./report.ts"

/** The lines that open and close the generated part of the page. */
export const begin = "<!-- bench-results: begin (written by npm run bench:docs from bench/results.json) -->"
export const end = "<!-- bench-results: end -->"

/** The run as the page shows it: the machine and the tables, without the commit or date. */
export const render = (results: Report.Results): string => {
  const m = results.machine
  const tables = Report.render(results).split("\n").slice(1).join("\n").trim()
  // The redis family renders its own table, which the report leaves out.
  const redis = (results as { readonly redis?: RedisFamily.RedisResult }).redis
  const redisTable = redis === undefined ? [] : ["", RedisFamily.render(redis, m.cpus).trim()]
  return [
    `Machine: ${m.cpus} cores, ${m.model}, ${m.totalMemoryGiB} GiB, ${m.platform}, Node ${m.node}. ` +
    `Median of ${results.timing.rounds} rounds (~${results.timing.batchMillis} ms each, after ` +
    `${results.timing.warmupMillis} ms of warm-up per contender).`,
    "",
    tables,
    ...redisTable
  ].join("\n")
}

/** `page` with its generated part replaced by `results`; throws if the markers are missing. */
export const splice = (page: string, results: Report.Results): string => {
  const from = page.indexOf(begin)
  const to = page.indexOf(end)
  if (from < 0 || to < from) throw new Error(`the page lacks the lines ${begin} and ${end}`)
  return `${page.slice(0, from + begin.length)}\n\n${render(results)}\n\n${page.slice(to)}`
}

/** Rewrites the generated part of `pagePath` from `resultsPath`. */
export const write = (resultsPath = "bench/results.json", pagePath = "docs/benchmarks.md"): void => {
  const results = JSON.parse(readFileSync(resultsPath, "utf8")) as Report.Results
  writeFileSync(pagePath, splice(readFileSync(pagePath, "utf8"), results))
}

if (import.meta.url === `file://${process.argv[1]}`) write(process.argv[2], process.argv[3])
