/**
 * Byte/string conversions built on Web APIs only (TextEncoder, btoa/atob),
 * so they run in the Convex runtime where Buffer does not exist.
 */

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

/** UTF-8 bytes of a string. */
export function utf8Encode(text: string): Uint8Array<ArrayBuffer> {
  return utf8Encoder.encode(text);
}

/** String from UTF-8 bytes; throws on invalid UTF-8. */
export function utf8Decode(bytes: Uint8Array): string {
  return utf8Decoder.decode(bytes);
}

function bytesToBinaryString(bytes: Uint8Array): string {
  let binary = "";
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    binary += String.fromCharCode(...bytes.subarray(i, i + chunk));
  }
  return binary;
}

function binaryStringToBytes(binary: string): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

// Single character classes only: a repeated group such as (?:[…]{4})* makes V8's
// backtracking regex engine overflow its stack on a multi-megabyte input.
const BASE64URL = /^[A-Za-z0-9_-]*$/;
const BASE64_STANDARD = /^[A-Za-z0-9+/]*={0,2}$/;

/** Standard base64 with padding (the legacy Dashtray ciphertext encoding). */
export function base64Encode(bytes: Uint8Array): string {
  return btoa(bytesToBinaryString(bytes));
}

/**
 * Whether `text` has the shape of padded standard base64: whole 4-character
 * groups, padding only at the end. (base64Decode also checks it is canonical.)
 * Linear in the length of `text`, whatever its size.
 */
export function isBase64(text: string): boolean {
  return text.length % 4 === 0 && BASE64_STANDARD.test(text);
}

/** Decodes padded standard base64; returns null when the text is not canonical base64. */
export function base64Decode(text: string): Uint8Array<ArrayBuffer> | null {
  if (!isBase64(text)) return null;
  const bytes = binaryStringToBytes(atob(text));
  return base64Encode(bytes) === text ? bytes : null;
}

/** URL-safe base64 without padding (RFC 4648 §5), used by the current format. */
export function base64UrlEncode(bytes: Uint8Array): string {
  return base64Encode(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const BASE64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/** By `length % 4`: the bits of the last character that carry no data (they must be zero). */
const UNUSED_LAST_CHARACTER_BITS = [0, 0, 0b1111, 0b11] as const;

/** Decodes unpadded URL-safe base64; returns null for anything non-canonical. */
export function base64UrlDecode(text: string): Uint8Array<ArrayBuffer> | null {
  if (!BASE64URL.test(text) || text.length % 4 === 1) return null;
  // Canonical means the unused low bits of the last character are zero
  // (checked directly: cheaper than re-encoding on every decryption).
  const unusedBits = UNUSED_LAST_CHARACTER_BITS[text.length % 4 as 0 | 2 | 3];
  if (unusedBits !== 0 && (BASE64URL_ALPHABET.indexOf(text.charAt(text.length - 1)) & unusedBits) !== 0) return null;
  const standard = text.replace(/-/g, "+").replace(/_/g, "/");
  return binaryStringToBytes(atob(standard + "=".repeat((4 - (standard.length % 4)) % 4)));
}

/** Lowercase hex of bytes. */
export function hexEncode(bytes: Uint8Array): string {
  let hex = "";
  for (const byte of bytes) hex += byte.toString(16).padStart(2, "0");
  return hex;
}

/** Bytes of an even-length hex string; throws on anything else. */
export function hexDecode(hex: string): Uint8Array<ArrayBuffer> {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new TypeError("hexDecode: not an even-length hex string");
  }
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

/** Concatenation of byte arrays. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
