import { StorageError } from '../errors.js'
import type { StoredTokenSet } from './types.js'

/** Whether `value` is an object with a function under each name in `methods`: a backend binding or area. */
export function hasMethods(value: unknown, methods: readonly string[]): boolean {
  return typeof value === 'object' && value !== null && methods.every((name) => typeof (value as Record<string, unknown>)[name] === 'function')
}

/** Runs one call of a storage backend; any failure becomes a `StorageError` named `what`, with the failure as cause. */
export async function backendCall<T>(what: string, request: () => Promise<T>): Promise<T> {
  try {
    return await request()
  } catch (error) {
    throw new StorageError(`${what} failed`, error)
  }
}

/** `value` as a token set, or a `StorageError` saying that `backend` holds something else. */
export function asTokenSet(value: unknown, backend: string): StoredTokenSet {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new StorageError(`${backend} holds a value that is not a token set`)
  }
  return value as StoredTokenSet
}

/** The `onDelete` listeners of one storage object, by key. */
export interface DeleteListeners {
  /** Adds `listener` for `key`; returns the function that removes it. */
  add(key: string, listener: () => void): () => void
  /** Calls the listeners of `key`; one that throws is logged and does not stop the others. */
  tell(key: string): void
}

/** Creates an empty set of `onDelete` listeners. */
export function deleteListeners(): DeleteListeners {
  // A new array on every change: a delivery in progress runs over the listeners it started with.
  let entries: Array<{ key: string; listener: () => void }> = []
  return {
    add(key, listener) {
      const entry = { key, listener }
      entries = [...entries, entry]
      return () => {
        entries = entries.filter((item) => item !== entry)
      }
    },
    tell(key) {
      for (const entry of entries) {
        if (entry.key !== key) continue
        try {
          entry.listener()
        } catch (error) {
          console.error('oauth-refresh: an onDelete listener threw', error)
        }
      }
    },
  }
}

/** JSON `text` from `backend` as a token set, or a `StorageError` saying that `backend` holds something else. */
export function parseTokenSet(text: string, backend: string): StoredTokenSet {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    // No cause: a SyntaxError's message quotes the text, which may hold a token.
    throw new StorageError(`${backend} holds a value that is not JSON`)
  }
  return asTokenSet(value, backend)
}
