import * as v from 'valibot'
import { unknownOptions } from './option-names.js'

// Few valibot schema kinds, each used many times: every distinct kind adds its code to bundles.
// Their messages say what is accepted, never the value given: `Option "x" must be …`.

/** A string. */
export const string = v.custom<string>((value) => typeof value === 'string', 'must be a string')

/** A non-empty string. */
export const text = v.custom<string>((value) => typeof value === 'string' && value !== '', 'must be a non-empty string')

/** A function. */
export const fn = v.custom<(...args: never[]) => unknown>((value) => typeof value === 'function', 'must be a function')

export const isStringArray = (value: unknown): value is string[] => Array.isArray(value) && value.every((item) => typeof item === 'string')

/** A schema as far as messages need it: an object's entries, an optional's wrapped schema. */
interface Node {
  entries: Record<string, Node>
  wrapped?: Node
  message?: string
}

/**
 * Validates `value` against `schema`. On failure throws `invalid(message)`, the message naming
 * every unknown key (each with the known one it was probably meant as), or else the first bad
 * option and what it accepts: `Option "retry.attempts" must be …`, `Option "tokenUrl" is required: …`.
 */
export function parseWith<T extends v.GenericSchema>(schema: T, value: unknown, invalid: (message: string) => Error): v.InferOutput<T> {
  // No default messages: valibot's quote the value, which may be a secret.
  const result = v.safeParse(schema, value, { message: '' })
  if (result.success) return result.output
  // The schema at `path`, optional ones unwrapped.
  const at = (path: v.IssuePathItem[]) =>
    path.reduce((node, { key }) => {
      const entry = node.entries[key as string]!
      return entry.wrapped ?? entry
    }, schema as unknown as Node)
  const prefix = (path: v.IssuePathItem[]) => path.map(({ key }) => `${key}.`).join('')
  // Unknown keys first, all of them: a misspelt `tokenUrl` is reported as such, not as missing.
  const unknown = result.issues
    .filter((issue) => issue.expected === 'never')
    .map(({ path = [] }) => unknownOptions(path.at(-1)!.input as object, Object.keys(at(path.slice(0, -1)).entries), prefix(path.slice(0, -1))))
  if (unknown.length) throw invalid(unknown.join('\n'))
  const [{ path, expected, message }] = result.issues
  // A missing key (`expected` is its quoted name) takes the message of the key's own schema.
  const problem = expected?.[0] === '"' ? `${at(path!).message}`.replace('must be', 'is required:') : message
  throw invalid(path ? `Option "${prefix(path).slice(0, -1)}" ${problem}` : `"options" ${problem}`)
}
