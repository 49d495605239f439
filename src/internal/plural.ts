/**
 * Counts in messages: "1 live credential", "2 live credentials".
 */

/** `count` and the noun, plural unless the count is exactly one. */
export const counted = (count: number, singular: string, plural = `${singular}s`): string =>
  `${count} ${count === 1 ? singular : plural}`
