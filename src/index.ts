export { createRefreshClient } from './client.js'
export type { ClearOptions, ClearResult, GetAccessTokenOptions, KeepAliveOptions, RefreshClient } from './client.js'
export type { EndReason, Listener, RefreshClientEvents, RefreshReason, TokenSet } from './events.js'
export type { SignIn } from './grant-store.js'
export type { DPoPHook, RefreshClientOptions } from './options.js'
export type { ClientAssertion, ClientAuthentication, RetryOptions } from './token-request.js'
export {
  ConfigError,
  NoGrantError,
  OAuthError,
  OAuthRefreshError,
  StorageError,
  TokenRequestError,
  TokenResponseError,
} from './errors.js'
export type { NoGrantReason, OAuthRefreshErrorCode, OAuthRefreshErrorOptions } from './errors.js'
export { memoryStorage } from './storage/memory.js'
export type { Lease, StoredTokenSet, TokenStorage } from './storage/types.js'
export type { ProviderError, ReadError } from './token-response.js'
