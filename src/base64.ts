const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

/**
 * Standard base64 (RFC 4648 §4, with padding) of the UTF-8 bytes of `text`. Written here rather
 * than with `btoa`, which throws on characters beyond Latin-1, and without Web Crypto or Buffer,
 * so it runs the same in every runtime.
 */
export function base64Utf8(text: string): string {
  const bytes = new TextEncoder().encode(text)
  let out = ''
  // Bytes past the end count as zero; the characters made only of them become padding below.
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0)
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + ALPHABET[(n >> 6) & 63]! + ALPHABET[n & 63]!
  }
  const padding = (3 - (bytes.length % 3)) % 3
  return out.slice(0, out.length - padding) + '='.repeat(padding)
}
