import * as v from 'valibot'

// Few valibot schema kinds, each used many times: every distinct kind adds its code to bundles.

/** A string. */
export const string = v.custom<string>((value) => typeof value === 'string')

/** A non-empty string. */
export const text = v.custom<string>((value) => typeof value === 'string' && value !== '')

export const isStringArray = (value: unknown): value is string[] => Array.isArray(value) && value.every((item) => typeof item === 'string')

/**
 * Validates `value` against `schema`. On failure throws `invalid(field)`, where `field` is the
 * dot path of the first bad field, or undefined when `value` itself is bad.
 */
export function parseWith<T extends v.GenericSchema>(schema: T, value: unknown, invalid: (field: string | undefined) => Error): v.InferOutput<T> {
  const result = v.safeParse(schema, value)
  if (!result.success) throw invalid(result.issues[0].path?.map((item) => item.key).join('.'))
  return result.output
}
