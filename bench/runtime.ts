/**
 * How the bench runs its TypeScript: with Node's own type transform, the way
 * the compiled package runs, not through tsx. tsx compiles with esbuild's
 * `keepNames`, which wraps every function created at run time in a
 * `__name(fn, "name")` call, a property definition of about 0.3 µs: per
 * request, on every closure a guard or `resolve` makes, a cost no host
 * running the built package pays. `npm run bench` and `bench:compare` start
 * Node with these flags; the bench's child processes (the load generator,
 * the Redis replicas) are forked with them.
 */

/** Node's flags for running the bench's TypeScript sources. */
export const execArgv: ReadonlyArray<string> = ["--experimental-transform-types", "--disable-warning=ExperimentalWarning"]
