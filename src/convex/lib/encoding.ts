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

const BASE64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/** Character code → 6-bit value, or -1 for a character outside the base64url alphabet. */
const BASE64URL_VALUES = new Int8Array(128).fill(-1);
for (let i = 0; i < BASE64URL_ALPHABET.length; i++) BASE64URL_VALUES[BASE64URL_ALPHABET.charCodeAt(i)] = i;
/** Every 12-bit value → its two base64url characters, so encoding appends strings and allocates no buffer. */
const BASE64URL_PAIRS: readonly string[] = Array.from(
  { length: 4096 },
  (_, n) => BASE64URL_ALPHABET[n >>> 6]! + BASE64URL_ALPHABET[n & 63]!,
);

/**
 * URL-safe base64 without padding (RFC 4648 §5), used by the dtenc formats.
 * Table-driven over the bytes (no btoa, no regex passes): it runs on every
 * encryption, where it was the largest part of the core's own work.
 */
export function base64UrlEncode(bytes: Uint8Array): string {
  const whole = bytes.length - (bytes.length % 3);
  let out = "";
  for (let i = 0; i < whole; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += BASE64URL_PAIRS[n >>> 12]! + BASE64URL_PAIRS[n & 4095]!;
  }
  if (bytes.length - whole === 1) {
    out += BASE64URL_PAIRS[bytes[whole]! << 4]!;
  } else if (bytes.length - whole === 2) {
    const n = (bytes[whole]! << 10) | (bytes[whole + 1]! << 2);
    out += BASE64URL_PAIRS[n >>> 6]! + BASE64URL_ALPHABET[n & 63]!;
  }
  return out;
}

/** By `length % 4`: the bits of the last character that carry no data (they must be zero). */
const UNUSED_LAST_CHARACTER_BITS = [0, 0, 0b1111, 0b11] as const;

/**
 * Decodes unpadded URL-safe base64; returns null for anything non-canonical:
 * a character outside the alphabet (padding included), a length ≡ 1 (mod 4),
 * or non-zero unused bits in the last character. One table-driven pass.
 */
export function base64UrlDecode(text: string): Uint8Array<ArrayBuffer> | null {
  const length = text.length;
  const rest = length % 4;
  if (rest === 1) return null;
  const whole = length - rest;
  const out = new Uint8Array(Math.floor((length * 3) / 4));
  const value = (i: number) => {
    const code = text.charCodeAt(i);
    return code < 128 ? BASE64URL_VALUES[code]! : -1;
  };
  let o = 0;
  for (let i = 0; i < whole; i += 4) {
    const a = value(i);
    const b = value(i + 1);
    const c = value(i + 2);
    const d = value(i + 3);
    if ((a | b | c | d) < 0) return null;
    const n = (a << 18) | (b << 12) | (c << 6) | d;
    out[o++] = n >>> 16;
    out[o++] = (n >>> 8) & 0xff;
    out[o++] = n & 0xff;
  }
  if (rest !== 0) {
    const a = value(whole);
    const b = value(whole + 1);
    const c = rest === 3 ? value(whole + 2) : 0;
    if ((a | b | c) < 0) return null;
    // Canonical means the unused low bits of the last character are zero.
    if (((rest === 3 ? c : b) & UNUSED_LAST_CHARACTER_BITS[rest as 2 | 3]) !== 0) return null;
    const n = (a << 18) | (b << 12) | (c << 6);
    out[o] = n >>> 16;
    if (rest === 3) out[o + 1] = (n >>> 8) & 0xff;
  }
  return out;
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
