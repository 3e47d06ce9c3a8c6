import { ConfigError } from './errors.js'

/**
 * Why the option `name` is refused when it is not one of `known`, naming the known option it
 * was probably meant as: the same in another case (`tokenURL`), or one holding it (`ttl`).
 */
export function unknownOption(name: string, known: readonly string[]): string {
  const meant = known.find((key) => name.length > 2 && key.toLowerCase().includes(name.toLowerCase()))
  return `is not a known option${meant ? `; did you mean "${meant}"?` : ''}`
}

/** Throws a `ConfigError` when an adapter's `options` is not an object or has a key that is not in `known`. */
export function rejectUnknown(options: unknown, known: readonly string[]): asserts options is object {
  if (typeof options !== 'object' || options === null) throw new ConfigError('"options" must be an object')
  for (const key of Object.keys(options)) if (!known.includes(key)) throw new ConfigError(`Option "${key}" ${unknownOption(key, known)}`)
}
