import type { OAuthRefreshError } from './errors.js'

/** The access token and what the provider said with it. Never the refresh token. */
export interface TokenSet {
  accessToken: string
  /** The `token_type` the provider sent, as sent; `Bearer` when it sent none. */
  tokenType: string
  /** Epoch milliseconds at which the access token expires, when known. */
  expiresAt?: number | undefined
  /** Epoch milliseconds at which the access token was obtained. */
  obtainedAt?: number | undefined
  /** The scope granted (RFC 6749 §5.1). */
  scope?: string | undefined
  /** Epoch milliseconds at which the refresh token expires, when the provider said so. */
  refreshTokenExpiresAt?: number | undefined
  /** Every other member of the last token answer (`id_token`, `instance_url`, …). */
  fields: Record<string, unknown>
}

/** Why a refresh ran: the token expired (or there was none yet), a caller forced it, the API refused the token, or `keepAlive` found the grant idle. */
export type RefreshReason = 'expired' | 'forced' | 'rejected' | 'keep-alive'

/** Why a grant ended: cleared here, revoked at the provider, ended by the provider, or cleared in another context. */
export type EndReason = 'cleared' | 'revoked' | 'rejected' | 'elsewhere'

/** The events of a client, by name. */
export interface RefreshClientEvents {
  /** A refresh of this client succeeded and its grant is stored; one event per token request, however many callers shared it. */
  refresh: { tokenSet: TokenSet; rotated: boolean; reason: RefreshReason }
  /** The grant is gone, once per grant; `error` is the provider's answer that ended it, or a failed revocation. */
  end: { reason: EndReason; error?: OAuthRefreshError | undefined }
  /** A refresh shared by this client's callers failed (once, not per attempt or caller). */
  error: { error: unknown }
}

/** An event listener; its exceptions are logged and never reach the client. */
export type Listener<T> = (event: T) => void

/** The events of one client: `on` subscribes and returns the function that unsubscribes. */
export interface Events<E> {
  on<K extends keyof E>(type: K, listener: Listener<E[K]>): () => void
  emit<K extends keyof E>(type: K, event: E[K]): void
}

/** Creates an event emitter whose listeners cannot break their emitter. */
export function createEvents<E>(): Events<E> {
  const listeners: { [K in keyof E]?: Listener<E[K]>[] } = {}
  return {
    on(type, listener) {
      // A new array on every change: an emit in progress runs over the listeners it started with.
      listeners[type] = [...(listeners[type] ?? []), listener]
      return () => {
        listeners[type] = listeners[type]?.filter((item) => item !== listener)
      }
    },
    emit(type, event) {
      for (const listener of listeners[type] ?? []) {
        try {
          listener(event)
        } catch (error) {
          // Not reportError: in Deno it ends the process, as an uncaught exception would.
          console.error(`oauth-refresh: a "${String(type)}" listener threw`, error)
        }
      }
    },
  }
}
