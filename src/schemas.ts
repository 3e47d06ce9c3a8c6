import * as v from 'valibot'

// Few valibot schema kinds, each used many times: every distinct kind adds its code to bundles.

/** A string. */
export const string = v.custom<string>((value) => typeof value === 'string')

/** A non-empty string. */
export const text = v.custom<string>((value) => typeof value === 'string' && value !== '')

export const isStringArray = (value: unknown): value is string[] => Array.isArray(value) && value.every((item) => typeof item === 'string')

/**
 * Validates `value` against `schema`. On failure throws `invalid(field, problem, unknown)` for
 * the first bad field, an unknown key first: `field` is its dot path (undefined when `value`
 * itself is bad), `problem` the schema's own message (empty if it has none), and `unknown` says
 * a strict object met a key it does not know.
 */
export function parseWith<T extends v.GenericSchema>(
  schema: T,
  value: unknown,
  invalid: (field: string | undefined, problem: string, unknown: boolean) => Error,
): v.InferOutput<T> {
  // No default messages: valibot's quote the value, which may be a secret.
  const result = v.safeParse(schema, value, { message: '' })
  if (result.success) return result.output
  // An unknown key first: a misspelt `tokenUrl` is reported as such, not as `tokenUrl` missing.
  const issue = result.issues.find((item) => item.expected === 'never') ?? result.issues[0]
  throw invalid(issue.path?.map((item) => item.key).join('.'), issue.message, issue.expected === 'never')
}
