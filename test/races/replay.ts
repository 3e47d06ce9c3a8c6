/**
 * How to run the race suite again, as it prints it and as the README says it (test/readme.test.ts
 * holds the README to these words). A failure's message from fast-check gives its seed and path.
 */
export const REPLAY_COMMAND = 'RACES_SEED=<seed> RACES_PATH=<path> npx vitest run test/races.test.ts'
/** A longer search from a random seed, which the suite prints at its start. */
export const SEARCH_COMMAND = 'RACES_RUNS=5000 npx vitest run test/races.test.ts'
