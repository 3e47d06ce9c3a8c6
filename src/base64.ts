/** RFC 6749 §2.3.1: id and secret are form-encoded before they are joined for Basic. */
const formEncode = (value: string) => new URLSearchParams([['', value]]).toString().slice(1)

/** Standard base64 (RFC 4648 §4, with padding) of ASCII text: the SDK's own, no `btoa`, Buffer or Web Crypto. */
function base64Ascii(text: string): string {
  let out = ''
  // Past the end charCodeAt is NaN, which bit operations read as 0; padding replaces those digits.
  for (let i = 0; i < text.length; i += 3) {
    const n = (text.charCodeAt(i) << 16) | (text.charCodeAt(i + 1) << 8) | text.charCodeAt(i + 2)
    for (let shift = 18; shift >= 0; shift -= 6) {
      const digit = (n >> shift) & 63
      // A–Z, a–z, 0–9, then '+' (43) and '/' (47), computed rather than spelled out: fewer bytes.
      out += String.fromCharCode(digit < 26 ? digit + 65 : digit < 52 ? digit + 71 : digit < 62 ? digit - 4 : digit * 4 - 205)
    }
  }
  return out.slice(0, Math.ceil((text.length * 4) / 3)).padEnd(out.length, '=')
}

/**
 * The HTTP Basic credentials of a client (RFC 6749 §2.3.1): `base64(formEncode(id) + ':' +
 * formEncode(secret))`. Form encoding turns every character beyond ASCII into `%XX` escapes of
 * its UTF-8 bytes, so the joined text is ASCII and its characters are its UTF-8 bytes.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-2.3.1
 */
export const basicCredentials = (id: string, secret: string): string => base64Ascii(`${formEncode(id)}:${formEncode(secret)}`)

/**
 * The UTF-8 text of unpadded base64url (RFC 4648 §5), as JWTs use it (RFC 7515 §2), or
 * undefined when `text` holds any other character: the SDK's own decoder, no `atob` (which
 * yields Latin-1 characters, not UTF-8 text, and differs in what it refuses).
 */
export function base64UrlText(text: string): string | undefined {
  if (!/^[\w-]*$/.test(text)) return undefined
  const bytes: number[] = []
  let bits = 0
  let buffer = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    // '-', '_', a–z, A–Z, 0–9: only these pass the test above.
    buffer = (buffer << 6) | (c === 45 ? 62 : c === 95 ? 63 : c > 96 ? c - 71 : c > 64 ? c - 65 : c + 4)
    bits += 6
    if (bits >= 8) bytes.push((buffer >> (bits -= 8)) & 255)
  }
  return new TextDecoder().decode(new Uint8Array(bytes))
}
