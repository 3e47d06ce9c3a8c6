/**
 * The median, min and max of repeated measurements.
 *
 * @param {number[]} values
 * @returns {{ median: number, min: number, max: number, n: number }}
 */
export function summarize(values) {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  const median = sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
  return { median, min: sorted[0], max: sorted.at(-1), n: sorted.length }
}

/**
 * Runs `measure(name, round)` for every name in every round, interleaved (A, B, C, A, B, C …),
 * so that a noisy stretch of time hurts every contender alike.
 *
 * @template T
 * @param {string[]} names
 * @param {number} rounds
 * @param {(name: string, round: number) => Promise<T>} measure
 * @returns {Promise<Record<string, T[]>>} every name's results, in round order
 */
export async function interleave(names, rounds, measure) {
  const results = Object.fromEntries(names.map((name) => [name, []]))
  for (let round = 0; round < rounds; round++) {
    for (const name of names) results[name].push(await measure(name, round))
  }
  return results
}
