/** RFC 6749 §2.3.1: id and secret are form-encoded before they are joined for Basic. */
const formEncode = (value: string) => new URLSearchParams([['', value]]).toString().slice(1)

/**
 * The HTTP Basic credentials of a client (RFC 6749 §2.3.1): `base64(formEncode(id) + ':' +
 * formEncode(secret))`. Form encoding turns every character beyond ASCII into `%XX` escapes of
 * its UTF-8 bytes, so the joined text is ASCII and `btoa` encodes exactly its UTF-8 bytes.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-2.3.1
 */
export const basicCredentials = (id: string, secret: string): string => btoa(`${formEncode(id)}:${formEncode(secret)}`)
