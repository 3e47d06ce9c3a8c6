import { ConfigError } from './errors.js'

/**
 * Why the option `name` is refused when it is not one of `known`, naming the known option it
 * was probably meant as: the same in another case (`tokenURL`), in snake_case (`token_url`), or
 * one holding it (`ttl`).
 */
export function unknownOption(name: string, known: readonly string[]): string {
  const plain = name.replace(/_/g, '').toLowerCase()
  const meant = known.find((key) => plain.length > 2 && key.toLowerCase().includes(plain))
  return `is not a known option${meant ? `; did you mean "${meant}"?` : ''}`
}

/** One error message for every key of `options` that is not in `known`, each on its own line. */
export const unknownOptions = (options: object, known: readonly string[], path = '') =>
  Object.keys(options)
    .filter((key) => !known.includes(key))
    .map((key) => `Option "${path}${key}" ${unknownOption(key, known)}`)
    .join('\n')

/** Throws a `ConfigError` when an adapter's `options` is not an object or has keys that are not in `known`. */
export function rejectUnknown(options: unknown, known: readonly string[]): asserts options is object {
  if (typeof options !== 'object' || options === null) throw new ConfigError('"options" must be an object')
  const unknown = unknownOptions(options, known)
  if (unknown) throw new ConfigError(unknown)
}
