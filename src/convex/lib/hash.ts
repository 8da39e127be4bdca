/**
 * Hashing and random tokens for platform API keys: keys are stored only as
 * SHA-256 hashes, compared in constant time, and made from CSPRNG bytes.
 */
import { base64UrlEncode, hexEncode, utf8Encode } from "./encoding";

/** Lowercase hex SHA-256 of the UTF-8 bytes of `text`. */
export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", utf8Encode(text));
  return hexEncode(new Uint8Array(digest));
}

/** Lowercase hex HMAC-SHA256 of the UTF-8 bytes of `text` under the raw key `key`. */
export async function hmacSha256Hex(key: Uint8Array<ArrayBuffer>, text: string): Promise<string> {
  const hmacKey = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return hexEncode(new Uint8Array(await crypto.subtle.sign("HMAC", hmacKey, utf8Encode(text))));
}

/** Whether `value` has the shape of a sha256Hex output (64 lowercase hex characters). */
export function isSha256Hex(value: string): boolean {
  return /^[0-9a-f]{64}$/.test(value);
}

/**
 * Compares two strings in time independent of where they differ (the
 * length of the longer one still shows), for comparing secrets or hashes.
 */
export function constantTimeEqual(a: string, b: string): boolean {
  const left = utf8Encode(a);
  const right = utf8Encode(b);
  const length = Math.max(left.length, right.length);
  let difference = left.length ^ right.length;
  for (let i = 0; i < length; i++) difference |= (left[i] ?? 0) ^ (right[i] ?? 0);
  return difference === 0;
}

/** `byteCount` CSPRNG bytes as unpadded base64url. */
export function randomToken(byteCount: number): string {
  return base64UrlEncode(crypto.getRandomValues(new Uint8Array(byteCount)));
}
