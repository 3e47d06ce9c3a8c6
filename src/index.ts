export { createRefreshClient } from './client.js'
export type { GetAccessTokenOptions, RefreshClient } from './client.js'
export type { RefreshClientOptions } from './options.js'
export type { ClientAuthentication, RetryOptions } from './token-request.js'
export {
  ConfigError,
  OAuthError,
  OAuthRefreshError,
  StorageError,
  TokenRequestError,
  TokenResponseError,
} from './errors.js'
export type { OAuthRefreshErrorCode, OAuthRefreshErrorOptions } from './errors.js'
export { memoryStorage } from './storage/memory.js'
export type { Lease, StoredTokenSet, TokenStorage } from './storage/types.js'
