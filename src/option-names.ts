import { ConfigError } from './errors.js'

/**
 * Why the option `name` is refused when it is not one of `known`, naming the known option it
 * was probably meant as: the same in another case (`tokenURL`), or one holding it (`ttl`).
 */
export function unknownOption(name: string, known: readonly string[]): string {
  const meant = known.find((key) => name.length > 2 && key.toLowerCase().includes(name.toLowerCase()))
  return `is not a known option${meant ? `; did you mean "${meant}"?` : ''}`
}

/** Throws a `ConfigError` for the first key of an adapter's `options` that is not in `known`. */
export function rejectUnknown(options: object, known: readonly string[]): void {
  for (const key of Object.keys(options)) if (!known.includes(key)) throw new ConfigError(`Option "${key}" ${unknownOption(key, known)}`)
}
