import * as v from 'valibot'

// Few valibot schema kinds, each used many times: every distinct kind adds its code to bundles.

/** A string. */
export const string = v.custom<string>((value) => typeof value === 'string')

/** A non-empty string. */
export const text = v.custom<string>((value) => typeof value === 'string' && value !== '')

export const isStringArray = (value: unknown): value is string[] => Array.isArray(value) && value.every((item) => typeof item === 'string')

/**
 * Validates `value` against `schema`. On failure throws `invalid(field, unknown)`, where `field`
 * is the dot path of the first bad field (undefined when `value` itself is bad) and `unknown`
 * says a strict object met a key it does not know.
 */
export function parseWith<T extends v.GenericSchema>(
  schema: T,
  value: unknown,
  invalid: (field: string | undefined, unknown: boolean) => Error,
): v.InferOutput<T> {
  const result = v.safeParse(schema, value)
  if (result.success) return result.output
  const [issue] = result.issues
  throw invalid(issue.path?.map((item) => item.key).join('.'), issue.expected === 'never')
}
