// A real OAuth 2.0 authorization server (refresh token grant only) and a protected API on
// loopback, for the demo, the tests, the benchmarks and the runtime tests. node:http only.
import { createServer, STATUS_CODES } from 'node:http'
import { randomUUID } from 'node:crypto'
import { assertionProblem, checkProof } from './jose.mjs'

/**
 * @typedef {object} LocalServerOptions
 * @property {string} [host] Interface to listen on. Default `127.0.0.1`.
 * @property {number} [port] Port; default 0 (any free port).
 * @property {number} [backlog] Pending-connection queue; a storm of 1,000 clients needs more than Node's 511. Default 511.
 * @property {string} [clientId] Default `demo-client`.
 * @property {string | null} [clientSecret] Default `demo-secret`; `null` makes it a public client.
 * @property {string} [refreshToken] The initially valid refresh token. Default `demo-refresh-token`.
 * @property {number | null} [expiresIn] `expires_in` of issued tokens in seconds; `null` omits it. Default 3600.
 * @property {boolean} [rotate] Issue a new refresh token on every refresh (the old one dies). Default true.
 * @property {boolean} [revokeOnReuse] A spent (rotated-away) refresh token presented again revokes the
 *   whole grant, as RFC 9700 §4.14.2 advises and oidc-provider does. Default false.
 * @property {number} [graceMs] A rotation grace period, as Okta, Auth0 and Xero have: a refresh
 *   token rotated away less than this long ago is still accepted (and rotated again), not taken
 *   as reuse. Default 0.
 * @property {number} [latencyMs] Delay of every token response. Default 0.
 * @property {'any' | 'basic' | 'body'} [acceptClientAuth] Client authentication methods accepted. Default `any`.
 * @property {string} [grantType] The grant type the token endpoint accepts. Default `refresh_token`.
 * @property {string} [apiHeader] Header the API reads the token from. Default `authorization`.
 * @property {string} [apiPattern] Shape of that header's value. Default `Bearer {{access_token}}`.
 * @property {RawAnswer} [basicRefusal] How HTTP Basic is refused when `acceptClientAuth` is
 *   `body`, as providers that read credentials only from the body answer. Default 401 `invalid_client`.
 * @property {RawAnswer} [deadGrantAnswer] How a refresh token that is not (or no longer) valid is
 *   refused, in a provider's own shape (GitHub's HTTP 200 `error=bad_refresh_token`, HubSpot's
 *   `BAD_REFRESH_TOKEN`, …). Default 400 `invalid_grant`.
 * @property {DPoPServerOptions} [dpop] DPoP mode (RFC 9449): the token endpoint checks a proof
 *   (before it reads the refresh token), binds refresh and access tokens to the proof's key and
 *   answers `token_type: "DPoP"`; a refresh without a proof gets a bare `invalid_grant`; the API
 *   wants `Authorization: DPoP <token>` and a proof with `ath`.
 * @property {Record<string, string>} [clientJwk] A `private_key_jwt` client (RFC 7523): the public
 *   JWK its assertions are checked with (iss = sub = client id; aud the token URL, the revocation
 *   URL or the origin; exp; a jti never seen before). Any other client authentication is refused.
 */

/**
 * @typedef {object} DPoPServerOptions
 * @property {boolean} [tokenNonce] The token endpoint wants the server's nonce (RFC 9449 §8).
 * @property {boolean} [apiNonce] The API wants the server's nonce (RFC 9449 §9).
 * @property {boolean} [rotateNonce] Every successful answer carries a new nonce, which the next request must use.
 * @property {string} [boundKey] The thumbprint the initial refresh token is bound to (a sign-in with `dpop_jkt`).
 */

/**
 * A whole answer in a provider's own shape.
 *
 * @typedef {object} RawAnswer
 * @property {number} status
 * @property {string} body
 * @property {string} [contentType] Default `application/json`.
 */

/**
 * One injected fault, applied to the next token request.
 *
 * @typedef {object} Fault
 * @property {number} [delayMs] Answer this much later.
 * @property {boolean} [hang] Read the request, never answer.
 * @property {'before' | 'after'} [reset] Destroy the socket before reading the request, or after
 *   processing the grant (the refresh token has rotated): a lost response.
 * @property {number} [status] Answer this HTTP status (a plain-text body unless another field sets one).
 * @property {string} [retryAfter] `Retry-After` header value: seconds or an HTTP date.
 * @property {string} [body] Raw response body (status 200 unless `status` is set).
 * @property {string} [contentType] Content type of `body`. Default `application/json`.
 * @property {boolean} [html] Answer an HTML login page.
 * @property {boolean} [truncatedJson] Answer JSON cut off mid-way.
 * @property {boolean} [emptyBody] Answer 200 with an empty JSON body.
 * @property {number} [sizeBytes] Answer a valid-looking token JSON of this many bytes, streamed
 *   chunked; `handle.largeBodies` records how much of it was sent.
 * @property {unknown} [expiresIn] Send this JSON value as `expires_in` of a real grant.
 * @property {boolean} [rotate] Override rotation for this grant.
 * @property {string} [tokenType] Send this `token_type` for a real grant.
 * @property {boolean} [omitAccessToken] Process the grant but leave `access_token` out.
 * @property {Record<string, unknown>} [extra] Process the grant, then set these members of the
 *   answer (Slack's `ok` and `team`, an `error`, an `access_token` of your own, …).
 * @property {boolean} [form] Process the grant and answer `application/x-www-form-urlencoded`, as
 *   GitHub does unless JSON is asked for.
 * @property {string} [error] Answer an RFC 6749 §5.2 error (400, or 401 for `invalid_client`).
 * @property {string} [errorDescription] `error_description` of that error.
 * @property {(request: TokenRequestRecord) => unknown} [beforeAnswer] Called (and awaited) once a
 *   grant was processed (its refresh token rotated), before the answer is written: a test can stop
 *   the requesting process there, to pause it while the server holds its answer.
 */

/**
 * @typedef {object} TokenRequestRecord
 * @property {import('node:http').IncomingHttpHeaders} headers
 * @property {Record<string, string>} form
 * @property {'basic' | 'body' | 'jwt' | 'none'} clientAuth
 * @property {string | undefined} grantType
 */

/**
 * @typedef {object} LargeBodyRecord
 * @property {number} size Bytes the body would have had.
 * @property {number} sent Bytes written before the response ended or the client went away.
 * @property {Promise<void>} done Resolves when the response is finished or aborted.
 */

/**
 * @typedef {object} LocalServer
 * @property {string} origin e.g. `http://127.0.0.1:41234`
 * @property {string} tokenUrl `origin + '/token'`
 * @property {string} apiUrl `origin + '/api'`
 * @property {TokenRequestRecord[]} tokenRequests Every token request the server read, faulted ones included.
 * @property {number} tokenHits Every hit of /token, even one reset before it was read.
 * @property {number} apiRequests Requests to /api/**.
 * @property {Array<{ method: string, path: string, headers: import('node:http').IncomingHttpHeaders }>} apiLog
 * @property {LargeBodyRecord[]} largeBodies One per `sizeBytes` fault answered.
 * @property {string[]} issuedTokens Every access and refresh token the server handed out, for leak checks.
 * @property {string} validRefreshToken The refresh token the server accepts now.
 * @property {boolean} grantRevoked A spent refresh token came back with `revokeOnReuse`: the grant is dead.
 * @property {() => void} revokeAccessTokens Invalidate every issued access token.
 * @property {(refreshToken: string) => void} setRefreshToken Make this the one valid refresh token.
 * @property {(fault: Fault) => void} fault Queue a fault for the next token request.
 * @property {string} revocationUrl `origin + '/revoke'`: RFC 7009 token revocation.
 * @property {Array<{ token: string, hint: string | undefined, clientAuth: TokenRequestRecord['clientAuth'] }>} revocations
 *   Every revocation request whose client authenticated.
 * @property {(fault: Fault) => void} faultRevocation Queue a fault for the next revocation request.
 * @property {() => Promise<void>} close Stop listening and destroy every open socket.
 * @property {string[]} processedRefreshTokens Every refresh token the token endpoint looked up, after
 *   client authentication and the DPoP proof passed: one processed twice appears twice.
 * @property {string} dpopNonce The nonce the server wants now.
 * @property {() => void} rotateDpopNonce Make the server want a new nonce.
 * @property {Array<Record<string, any>>} dpopProofs The payload of every DPoP proof the server accepted.
 * @property {number} assertionsChecked Client assertions checked, good or bad.
 */

const FORM_TYPE = 'application/x-www-form-urlencoded'
const TOKEN_HEADERS = { 'content-type': 'application/json', 'cache-control': 'no-store', pragma: 'no-cache' }
const HTML_PAGE = '<!doctype html><html><head><title>Sign in</title></head><body><form>Sign in</form></body></html>'

/**
 * Starts the server. Resolves once it listens.
 *
 * @param {LocalServerOptions} [options]
 * @returns {Promise<LocalServer>}
 * @example
 * const server = await startLocalServer({ acceptClientAuth: 'body' })
 * server.fault({ status: 503, retryAfter: '1' })
 * await server.close()
 */
export async function startLocalServer(options = {}) {
  const {
    host = '127.0.0.1',
    port = 0,
    backlog = 511,
    clientId = 'demo-client',
    clientSecret = 'demo-secret',
    refreshToken = 'demo-refresh-token',
    expiresIn = 3600,
    rotate = true,
    revokeOnReuse = false,
    graceMs = 0,
    latencyMs = 0,
    acceptClientAuth = 'any',
    grantType = 'refresh_token',
    apiHeader = 'authorization',
    apiPattern = 'Bearer {{access_token}}',
  } = options
  const [apiPrefix, apiSuffix] = apiPattern.split('{{access_token}}')

  let validRefreshToken = refreshToken
  let grantRevoked = false
  /** Refresh tokens rotated away: presenting one again is reuse (RFC 9700 §4.14.2). */
  const spentRefreshTokens = new Set()
  /** @type {Map<string, number>} refresh token → when it was rotated away (epoch ms), for `graceMs` */
  const spentAt = new Map()
  let tokenHits = 0
  let apiRequests = 0
  /** @type {Map<string, number | undefined>} access token → expiry (epoch ms) */
  const accessTokens = new Map()
  /** @type {Fault[]} */
  const faults = []
  /** @type {TokenRequestRecord[]} */
  const tokenRequests = []
  /** @type {LocalServer['revocations']} */
  const revocations = []
  /** @type {Fault[]} */
  const revocationFaults = []
  /** @type {LocalServer['apiLog']} */
  const apiLog = []
  /** @type {LargeBodyRecord[]} */
  const largeBodies = []
  /** @type {string[]} */
  const issuedTokens = []
  const timers = new Set()
  const { dpop, clientJwk } = options
  const dpopSeen = new Set()
  const assertionSeen = new Set()
  let dpopNonce = `nonce-${randomUUID()}`
  let assertionsChecked = 0
  /** @type {Map<string, string>} refresh or access token → the thumbprint of the key it is bound to */
  const boundTo = new Map(dpop?.boundKey ? [[refreshToken, dpop.boundKey]] : [])
  /** @type {string[]} */
  const processedRefreshTokens = []
  /** @type {Array<Record<string, any>>} */
  const dpopProofs = []
  let selfOrigin = ''
  /** The origin the client called, which DPoP proofs name: a proxy in front (the runtime tests' harness) says so in `x-forwarded-host`. */
  const calledOrigin = (/** @type {import('node:http').IncomingMessage} */ req) => {
    const forwarded = req.headers['x-forwarded-host']
    return typeof forwarded === 'string' ? `http://${forwarded}` : selfOrigin
  }
  /** The nonce header of an answer when `want` (a nonce is required there), rotated first after a success when `rotateNonce`. */
  const nonceHeader = (/** @type {boolean | undefined} */ want, /** @type {boolean} */ success) => {
    if (!want) return {}
    if (success && dpop?.rotateNonce) dpopNonce = `nonce-${randomUUID()}`
    return { 'dpop-nonce': dpopNonce }
  }

  /** @param {number} ms */
  const sleep = (ms) =>
    new Promise((resolve) => {
      if (ms <= 0) return resolve(undefined)
      const timer = setTimeout(() => {
        timers.delete(timer)
        resolve(undefined)
      }, ms)
      timers.add(timer)
    })

  /** @param {unknown} seconds */
  const lifetimeMs = (seconds) => {
    const n = typeof seconds === 'string' && seconds.trim() !== '' ? Number(seconds) : seconds
    return typeof n === 'number' && Number.isFinite(n) && n > 0 ? n * 1000 : undefined
  }

  /**
   * @param {import('node:http').IncomingMessage} req
   * @returns {string | undefined}
   */
  const presentedAccessToken = (req) => {
    const value = req.headers[apiHeader.toLowerCase()]
    if (typeof value !== 'string' || !value.startsWith(apiPrefix) || !value.endsWith(apiSuffix ?? '')) return undefined
    return value.slice(apiPrefix.length, value.length - (apiSuffix ?? '').length)
  }

  /** @param {string | undefined} token */
  const isValidAccessToken = (token) => {
    if (token === undefined || !accessTokens.has(token)) return false
    const expiresAt = accessTokens.get(token)
    return expiresAt === undefined || Date.now() < expiresAt
  }

  /**
   * Checks client authentication per RFC 6749 §2.3: exactly one method, right credentials.
   *
   * @param {import('node:http').IncomingMessage} req
   * @param {Record<string, string>} form
   * @param {TokenRequestRecord['clientAuth']} method
   * @returns {{ status: number, error: string, description: string, basic?: boolean } | undefined}
   */
  const clientAuthProblem = (req, form, method) => {
    const basicHeader = /^basic /i.test(req.headers.authorization ?? '')
    if (clientJwk) {
      if (method !== 'jwt') return { status: 401, error: 'invalid_client', description: 'private_key_jwt is required' }
      assertionsChecked++
      if (form.client_assertion_type !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') return { status: 400, error: 'invalid_request', description: 'wrong client_assertion_type' }
      const audiences = [selfOrigin, calledOrigin(req)].flatMap((origin) => [`${origin}/token`, `${origin}/revoke`, origin])
      const problem = assertionProblem(form.client_assertion, { clientId, jwk: clientJwk, audiences, seen: assertionSeen })
      return problem || (form.client_id !== undefined && form.client_id !== clientId) ? { status: 401, error: 'invalid_client', description: problem ?? 'client_id mismatch' } : undefined
    }
    if (basicHeader && form.client_secret !== undefined) {
      return { status: 400, error: 'invalid_request', description: 'more than one client authentication method' }
    }
    const unauthorized = (/** @type {string} */ description) => ({
      status: 401,
      error: 'invalid_client',
      description,
      basic: basicHeader || acceptClientAuth === 'basic',
    })
    if (method === 'basic' && acceptClientAuth === 'body') return unauthorized('HTTP Basic is not accepted')
    if (method === 'body' && acceptClientAuth === 'basic') return unauthorized('credentials in the body are not accepted')
    if (method === 'none') {
      if (clientSecret !== null) return unauthorized('client authentication required')
      return form.client_id === clientId ? undefined : unauthorized('unknown client')
    }
    const credentials = method === 'basic' ? decodeBasic(req.headers.authorization ?? '') : { id: form.client_id, secret: form.client_secret }
    if (!credentials || credentials.id !== clientId || credentials.secret !== clientSecret) return unauthorized('client authentication failed')
    if (method === 'basic' && form.client_id !== undefined && form.client_id !== clientId) return unauthorized('client_id mismatch')
    return undefined
  }

  /**
   * @param {Record<string, string>} form
   * @param {Fault} fault
   */
  const issueTokens = (form, fault) => {
    const accessToken = `at-${randomUUID()}`
    issuedTokens.push(accessToken)
    const lifetime = 'expiresIn' in fault ? fault.expiresIn : expiresIn
    const ms = lifetimeMs(lifetime)
    accessTokens.set(accessToken, ms === undefined ? undefined : Date.now() + ms)
    /** @type {Record<string, unknown>} */
    const body = { access_token: accessToken, token_type: fault.tokenType ?? 'Bearer' }
    if (lifetime !== null && lifetime !== undefined) body.expires_in = lifetime
    if (fault.rotate ?? rotate) {
      spentRefreshTokens.add(validRefreshToken)
      spentAt.set(validRefreshToken, Date.now())
      validRefreshToken = `rt-${randomUUID()}`
      issuedTokens.push(validRefreshToken)
      body.refresh_token = validRefreshToken
    }
    if (form.scope !== undefined) body.scope = form.scope
    if (fault.omitAccessToken) delete body.access_token
    return Object.assign(body, fault.extra)
  }

  /**
   * @param {import('node:http').ServerResponse} res
   * @param {number} status
   * @param {Record<string, string>} headers
   * @param {string} body
   */
  const send = (res, status, headers, body) => {
    res.writeHead(status, { ...TOKEN_HEADERS, ...headers })
    res.end(body)
  }

  /**
   * @param {import('node:http').ServerResponse} res
   * @param {number} size
   */
  const streamLargeBody = async (res, size) => {
    const accessToken = `at-${randomUUID()}`
    issuedTokens.push(accessToken)
    const head = `{"access_token":"${accessToken}","token_type":"Bearer","expires_in":3600,"padding":"`
    const tail = '"}'
    const chunk = 'x'.repeat(64 * 1024)
    /** @type {LargeBodyRecord} */
    const record = { size, sent: 0, done: new Promise((resolve) => res.once('close', () => resolve())) }
    largeBodies.push(record)
    res.writeHead(200, TOKEN_HEADERS)
    /** @param {string} text */
    const write = async (text) => {
      record.sent += Buffer.byteLength(text)
      if (res.write(text)) return
      await new Promise((resolve) => {
        const settle = () => {
          res.off('drain', settle)
          res.off('close', settle)
          resolve(undefined)
        }
        res.on('drain', settle)
        res.on('close', settle)
      })
    }
    await write(head)
    let padding = Math.max(0, size - Buffer.byteLength(head) - tail.length)
    while (padding > 0 && !res.destroyed) {
      const piece = padding >= chunk.length ? chunk : chunk.slice(0, padding)
      padding -= piece.length
      await write(piece)
    }
    if (!res.destroyed) res.end(tail)
    if (!res.destroyed) record.sent += tail.length
  }

  /**
   * The answer a fault dictates in place of normal processing, if any.
   *
   * @param {Fault} fault
   * @returns {{ status: number, headers: Record<string, string>, body: string } | undefined}
   */
  const faultAnswer = (fault) => {
    const status = fault.status ?? 200
    if (fault.html) return { status, headers: { 'content-type': 'text/html; charset=utf-8' }, body: HTML_PAGE }
    if (fault.truncatedJson) return { status, headers: {}, body: '{"access_token":"at-trunc","token_ty' }
    if (fault.emptyBody) return { status, headers: {}, body: '' }
    if (fault.body !== undefined) return { status, headers: { 'content-type': fault.contentType ?? 'application/json' }, body: fault.body }
    if (fault.error) {
      const body = JSON.stringify({ error: fault.error, error_description: fault.errorDescription ?? 'injected fault' })
      return { status: fault.status ?? (fault.error === 'invalid_client' ? 401 : 400), headers: {}, body }
    }
    if (fault.status) return { status, headers: { 'content-type': 'text/plain' }, body: STATUS_CODES[status] ?? 'Error' }
    return undefined
  }

  /**
   * @param {import('node:http').IncomingMessage} req
   * @param {import('node:http').ServerResponse} res
   * @returns {Promise<unknown>}
   */
  const handleToken = async (req, res) => {
    tokenHits++
    const fault = faults.shift() ?? {}
    if (fault.reset === 'before') return req.socket.destroy()
    const raw = await readBody(req)
    const isForm = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase() === FORM_TYPE
    const form = isForm ? Object.fromEntries(new URLSearchParams(raw)) : {}
    const basic = /^basic /i.test(req.headers.authorization ?? '')
    /** @type {TokenRequestRecord['clientAuth']} */
    const clientAuth = basic ? 'basic' : form.client_secret !== undefined ? 'body' : form.client_assertion !== undefined ? 'jwt' : 'none'
    const record = { headers: req.headers, form, clientAuth, grantType: form.grant_type }
    tokenRequests.push(record)
    if (fault.hang) return
    await sleep(latencyMs + (fault.delayMs ?? 0))
    if (res.destroyed) return

    /** @type {Record<string, string>} */
    const retryAfter = fault.retryAfter === undefined ? {} : { 'retry-after': fault.retryAfter }
    if (fault.sizeBytes !== undefined) return streamLargeBody(res, fault.sizeBytes)
    const forced = faultAnswer(fault)
    if (forced) return send(res, forced.status, { ...forced.headers, ...retryAfter }, forced.body)

    /** @type {(status: number, error: string, description: string, headers?: Record<string, string>) => void} */
    const oauthError = (status, error, description, headers = {}) =>
      send(res, status, headers, JSON.stringify({ error, error_description: description }))
    /** @type {(answer: RawAnswer) => void} */
    const rawAnswer = (answer) => send(res, answer.status, { 'content-type': answer.contentType ?? 'application/json' }, answer.body)
    if (req.method !== 'POST') return oauthError(405, 'invalid_request', 'use POST', { allow: 'POST' })
    if (!isForm) return oauthError(400, 'invalid_request', `content type must be ${FORM_TYPE}`)
    const authProblem = clientAuthProblem(req, form, clientAuth)
    if (authProblem && clientAuth === 'basic' && acceptClientAuth === 'body' && options.basicRefusal) return rawAnswer(options.basicRefusal)
    if (authProblem) {
      return oauthError(authProblem.status, authProblem.error, authProblem.description, authProblem.basic ? { 'www-authenticate': 'Basic realm="token"' } : {})
    }
    if (form.grant_type !== grantType) return oauthError(400, 'unsupported_grant_type', `grant_type must be ${grantType}`)
    if (!form.refresh_token) return oauthError(400, 'invalid_request', 'refresh_token is missing')
    // RFC 9449 §5: the proof, and its nonce, are checked before the refresh token is looked at.
    let jkt
    if (dpop && req.headers.dpop === undefined) return oauthError(400, 'invalid_grant', 'DPoP proof required')
    if (dpop) {
      const checked = checkProof(req.headers.dpop, { method: 'POST', url: `${calledOrigin(req)}/token`, nonce: dpop.tokenNonce ? dpopNonce : undefined, seen: dpopSeen })
      if ('error' in checked) return oauthError(400, checked.error, checked.description, nonceHeader(dpop.tokenNonce, false))
      dpopProofs.push(checked.payload)
      jkt = checked.jkt
    }
    processedRefreshTokens.push(form.refresh_token)
    const boundKey = boundTo.get(form.refresh_token)
    if (dpop && boundKey && boundKey !== jkt) return oauthError(400, 'invalid_grant', 'refresh token is bound to another key')
    const graced = !grantRevoked && Date.now() - (spentAt.get(form.refresh_token) ?? -Infinity) < graceMs
    if (revokeOnReuse && spentRefreshTokens.has(form.refresh_token) && !graced) {
      grantRevoked = true
      validRefreshToken = `revoked-${randomUUID()}`
      accessTokens.clear()
      if (options.deadGrantAnswer) return rawAnswer(options.deadGrantAnswer)
      return oauthError(400, 'invalid_grant', 'refresh token already used; the grant is revoked')
    }
    if (form.refresh_token !== validRefreshToken && !graced) {
      if (options.deadGrantAnswer) return rawAnswer(options.deadGrantAnswer)
      return oauthError(400, 'invalid_grant', 'refresh token is invalid, expired or revoked')
    }

    const body = issueTokens(form, fault)
    /** @type {Record<string, string>} */
    let dpopHeaders = {}
    if (jkt) {
      // Bound to the key of its first use, and its successor to the same key.
      const key = boundKey ?? jkt
      for (const token of [form.refresh_token, body.refresh_token, body.access_token]) if (typeof token === 'string') boundTo.set(token, key)
      body.token_type = 'DPoP'
      dpopHeaders = nonceHeader(dpop?.tokenNonce, true)
    }
    await fault.beforeAnswer?.(record)
    if (fault.reset === 'after') return req.socket.destroy()
    if (fault.form) {
      const pairs = Object.entries(body).map(([key, value]) => [key, String(value)])
      return send(res, 200, { 'content-type': `${FORM_TYPE}; charset=utf-8`, ...retryAfter }, new URLSearchParams(pairs).toString())
    }
    send(res, 200, { ...retryAfter, ...dpopHeaders }, JSON.stringify(body))
  }

  /**
   * RFC 7009: revokes the grant when its current (or, with `revokeOnReuse`, a spent) refresh
   * token is presented; answers 200 for any other token too (§2.2).
   *
   * @param {import('node:http').IncomingMessage} req
   * @param {import('node:http').ServerResponse} res
   */
  const handleRevoke = async (req, res) => {
    const raw = await readBody(req)
    const form = Object.fromEntries(new URLSearchParams(raw))
    const forced = faultAnswer(revocationFaults.shift() ?? {})
    if (forced) return send(res, forced.status, forced.headers, forced.body)
    const clientAuth = /^basic /i.test(req.headers.authorization ?? '') ? 'basic' : form.client_secret !== undefined ? 'body' : form.client_assertion !== undefined ? 'jwt' : 'none'
    const problem = clientAuthProblem(req, form, clientAuth)
    if (problem) return send(res, problem.status, {}, JSON.stringify({ error: problem.error, error_description: problem.description }))
    if (!form.token) return send(res, 400, {}, JSON.stringify({ error: 'invalid_request', error_description: 'token is missing' }))
    revocations.push({ token: form.token, hint: form.token_type_hint, clientAuth })
    if (form.token === validRefreshToken || (revokeOnReuse && spentRefreshTokens.has(form.token))) {
      spentRefreshTokens.add(validRefreshToken)
      validRefreshToken = `revoked-${randomUUID()}`
      accessTokens.clear()
    }
    send(res, 200, {}, '')
  }

  /**
   * @param {import('node:http').IncomingMessage} req
   * @param {import('node:http').ServerResponse} res
   * @param {URL} url
   * @returns {Promise<unknown>}
   */
  const handleApi = async (req, res, url) => {
    apiRequests++
    apiLog.push({ method: req.method ?? 'GET', path: url.pathname, headers: req.headers })
    const body = await readBody(req)
    const dpopToken = dpop && /^DPoP (.+)$/.exec(req.headers.authorization ?? '')?.[1]
    if (dpop && dpopToken) {
      const checked = checkProof(req.headers.dpop, { method: req.method ?? 'GET', url: `${calledOrigin(req)}${url.pathname}`, nonce: dpop.apiNonce ? dpopNonce : undefined, accessToken: dpopToken, seen: dpopSeen })
      const problem = 'error' in checked ? checked.error : isValidAccessToken(dpopToken) && boundTo.get(dpopToken) === checked.jkt ? undefined : 'invalid_token'
      if (!('error' in checked)) dpopProofs.push(checked.payload)
      const answer = problem ? { 'www-authenticate': `DPoP error="${problem}", algs="ES256 EdDSA"` } : {}
      res.writeHead(problem ? 401 : 200, { 'content-type': 'application/json', ...answer, ...nonceHeader(dpop.apiNonce, !problem) })
      if (url.pathname === '/api/echo-headers') return res.end(JSON.stringify(req.headers))
      return res.end(JSON.stringify(problem ? { error: problem } : { ok: true, method: req.method, path: url.pathname, body }))
    }
    // A DPoP-bound token is refused as a Bearer token.
    const authorized = isValidAccessToken(presentedAccessToken(req)) && !boundTo.has(presentedAccessToken(req) ?? '')
    const status = authorized ? 200 : 401
    const headers = { 'content-type': 'application/json', ...(authorized ? {} : { 'www-authenticate': 'Bearer error="invalid_token"' }) }
    res.writeHead(status, headers)
    if (url.pathname === '/api/echo-headers') return res.end(JSON.stringify(req.headers))
    res.end(JSON.stringify(authorized ? { ok: true, method: req.method, path: url.pathname, body } : { error: 'invalid_token' }))
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    /** @type {Promise<unknown> | undefined} */
    let handled
    if (url.pathname === '/token') handled = handleToken(req, res)
    else if (url.pathname === '/revoke') handled = handleRevoke(req, res)
    else if (url.pathname === '/api' || url.pathname.startsWith('/api/')) handled = handleApi(req, res, url)
    else if (url.pathname === '/redirect') {
      res.writeHead(Number(url.searchParams.get('status') ?? 302), { location: url.searchParams.get('to') ?? '/' })
      res.end()
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' })
      res.end('Not Found')
    }
    // A client that goes away mid-request is normal here (resets, timeouts); never crash on it.
    Promise.resolve(handled).catch(() => req.socket.destroy())
  })

  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen({ port, host, backlog }, () => resolve(undefined))
  })
  const address = /** @type {import('node:net').AddressInfo} */ (server.address())
  const origin = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`
  selfOrigin = origin

  return {
    origin,
    tokenUrl: `${origin}/token`,
    apiUrl: `${origin}/api`,
    revocationUrl: `${origin}/revoke`,
    revocations,
    faultRevocation: (fault) => void revocationFaults.push(fault),
    tokenRequests,
    apiLog,
    largeBodies,
    issuedTokens,
    get tokenHits() {
      return tokenHits
    },
    get apiRequests() {
      return apiRequests
    },
    get validRefreshToken() {
      return validRefreshToken
    },
    get grantRevoked() {
      return grantRevoked
    },
    revokeAccessTokens() {
      accessTokens.clear()
    },
    setRefreshToken(value) {
      validRefreshToken = value
    },
    fault(value) {
      faults.push(value)
    },
    processedRefreshTokens,
    dpopProofs,
    get dpopNonce() {
      return dpopNonce
    },
    rotateDpopNonce() {
      dpopNonce = `nonce-${randomUUID()}`
    },
    get assertionsChecked() {
      return assertionsChecked
    },
    close() {
      for (const timer of timers) clearTimeout(timer)
      timers.clear()
      return new Promise((resolve) => {
        server.close(() => resolve(undefined))
        server.closeAllConnections()
      })
    },
  }
}

/**
 * Decodes `Authorization: Basic …` as RFC 6749 §2.3.1 defines it: base64 of
 * `formEncode(id) ':' formEncode(secret)`, so each part is form-decoded after the split.
 *
 * @param {string} header
 * @returns {{ id: string, secret: string } | undefined}
 */
function decodeBasic(header) {
  const decoded = Buffer.from(header.replace(/^basic\s+/i, ''), 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon < 0) return undefined
  try {
    return { id: formDecode(decoded.slice(0, colon)), secret: formDecode(decoded.slice(colon + 1)) }
  } catch {
    return undefined
  }
}

/** @param {string} value */
function formDecode(value) {
  return decodeURIComponent(value.replace(/\+/g, ' '))
}

/**
 * @param {import('node:http').IncomingMessage} req
 * @returns {Promise<string>}
 */
async function readBody(req) {
  const chunks = []
  for await (const chunk of req) chunks.push(chunk)
  return Buffer.concat(chunks).toString('utf8')
}
