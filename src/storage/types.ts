/**
 * The token set the client persists for one grant. Plain JSON-safe data: every adapter may
 * serialize it as it likes and must give back an equal object.
 */
export interface StoredTokenSet {
  /** The current access token; absent until the first refresh of a new grant. */
  accessToken?: string
  /** The current (possibly rotated) refresh token. */
  refreshToken: string
  /** Epoch milliseconds at which the access token expires; absent when the server sent no `expires_in`. */
  expiresAt?: number
  /** Epoch milliseconds at which the access token was obtained. */
  obtainedAt?: number
  /** The scope granted, as the token endpoint returned it (RFC 6749 §5.1). */
  scope?: string
  /** The `token_type` of the access token, as the provider sent it; absent means Bearer. */
  tokenType?: string
  /** Epoch milliseconds at which the refresh token expires, when the provider said so. */
  refreshTokenExpiresAt?: number
  /** Every other member of the last token answer (`id_token`, `instance_url`, …); never a refresh token. */
  fields?: Record<string, unknown>
  /**
   * A fingerprint (not the value) of the configured refresh token that started this grant, so a
   * restarted client can tell its own rotated grant from a different one.
   */
  grantId: string
  /** A fingerprint of the refresh token a sign-in (`setRefreshToken`) of a configured client started with. */
  signIn?: string
}

/**
 * Where the client keeps its grant. The SDK's one extension point: any object with `get`, `set`
 * and `delete` works; a storage shared by several processes adds `lock`. Values are plain
 * JSON-safe objects.
 *
 * @example
 * const storage: TokenStorage = {
 *   get: async (key) => JSON.parse(localStorage.getItem(key) ?? 'null') ?? undefined,
 *   set: async (key, value) => localStorage.setItem(key, JSON.stringify(value)),
 *   delete: async (key) => localStorage.removeItem(key),
 * }
 */
export interface TokenStorage {
  /** Resolves the value stored under `key`, or `undefined` when there is none. */
  get(key: string): Promise<StoredTokenSet | undefined>
  /** Stores `value` under `key`, replacing what was there. */
  set(key: string, value: StoredTokenSet): Promise<void>
  /** Removes `key`; resolves even when it was not there. */
  delete(key: string): Promise<void>
  /**
   * Optional. Runs `task` while no other holder of `key`'s lock, in any process or isolate that
   * shares this storage, runs one, and settles as `task` does. The client runs every refresh
   * under it, so a grant is refreshed once per expiry however many processes hold it; without
   * it the client uses Web Locks where they exist.
   *
   * The lock is a lease: its holder renews it while `task` runs, and it ends by itself a bounded
   * time after the holder stops renewing (the process died), so a dead holder blocks the grant
   * only that long. Each adapter documents its bound (`denoKVStorage`: `leaseMs`).
   *
   * An adapter that can also guard a holder that pauses past its lease (a GC pause, a suspended
   * VM) passes `task` a {@link Lease}; one that passes none keeps the plain lock.
   */
  lock?<T>(key: string, task: (lease?: Lease) => Promise<T>): Promise<T>
  /**
   * Optional. Calls `listener` when another context (a tab, a worker, an extension page) deletes
   * `key` from this storage, so that a sign-out there ends the grant here at once; returns the
   * function that stops listening. Without it, other contexts notice at their next refresh.
   */
  onDelete?(key: string, listener: () => void): () => void
}

/**
 * What a storage's lock hands its task so that a holder which pauses past its lease loses
 * nothing (RFC 9700 §4.14.2: a provider that sees a spent refresh token revokes the grant).
 * A lease cannot guard the request to the token endpoint, which checks no fencing token, so the
 * task claims each send in storage and stores the answer by compare-and-set.
 *
 * "The grant this holder read" is what the adapter's own `get(key)` last returned to this
 * holder under the lease (or none), and after `set`, what it wrote.
 */
export interface Lease {
  /**
   * Call right before each attempt to send `refreshToken`. In one atomic step in storage: this
   * holder still holds the lease (or holds the live in-flight record for `refreshToken`, or
   * nobody holds the lease and it takes it again), storage still holds the grant this holder
   * read, and no other holder's in-flight record for `refreshToken` is live; then it records
   * "`refreshToken` in flight, held by this holder" until a deadline: `timeoutMs` (the request's
   * timeout) plus the time the adapter allows to store the answer.
   *
   * Resolves `true` once recorded: send. Resolves `false` when storage no longer holds the grant
   * this holder read: do not send, read again (another holder refreshed). While another holder's
   * record is live, or another holder holds the lease, it waits (for that record's deadline, that
   * lease's end, or a change in storage). Rejects with a `StorageError` when storage fails.
   */
  claim(refreshToken: string, timeoutMs: number): Promise<boolean>
  /**
   * Stores `value` under the lease's key only while storage still holds the grant this holder
   * read, or still none: a holder that paused past its deadline never rolls storage back to an
   * older refresh token. A refused write rejects with a `StorageError`; a failing store is tried
   * again until the deadline of this holder's last claim.
   */
  set(value: StoredTokenSet): Promise<void>
}
