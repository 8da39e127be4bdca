/**
 * Key derivation on WebCrypto: PBKDF2-HMAC-SHA256 (the expensive step, run
 * at most once per master key per call for format v2) and HKDF-SHA256 (per-salt
 * keys and key ids from a v2 root, microseconds each). No caching here: a
 * keyring memoises what one call derived (lib/keyring.ts), since nothing at
 * module level survives a Convex function call.
 */
import { CryptoError } from "./errors";

/** Iterations of every PBKDF2 this code runs: v2 roots, v1 keys and ids, legacy keys. */
export const DEFAULT_PBKDF2_ITERATIONS = 100_000;

const EMPTY_SALT = new Uint8Array(0);

function checkIterations(iterations: number): void {
  if (!Number.isInteger(iterations) || iterations < 1) {
    throw new CryptoError("INVALID_ARGUMENT", "PBKDF2 iterations must be a positive integer");
  }
}

/** Raw PBKDF2-HMAC-SHA256 output bytes (v2 roots, v1 key ids, test vectors). */
export async function pbkdf2Sha256(
  password: Uint8Array<ArrayBuffer>,
  salt: Uint8Array<ArrayBuffer>,
  iterations: number,
  lengthBytes: number,
): Promise<Uint8Array<ArrayBuffer>> {
  checkIterations(iterations);
  const baseKey = await crypto.subtle.importKey("raw", password, "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations },
    baseKey,
    lengthBytes * 8,
  );
  return new Uint8Array(bits);
}

/** A non-extractable AES-256-GCM key derived with PBKDF2-HMAC-SHA256 (v1 and legacy formats). */
export async function deriveAesGcmKey(
  password: Uint8Array<ArrayBuffer>,
  salt: Uint8Array<ArrayBuffer>,
  iterations: number,
): Promise<CryptoKey> {
  checkIterations(iterations);
  const baseKey = await crypto.subtle.importKey("raw", password, "PBKDF2", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations },
    baseKey,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

/** Imports key material (a v2 root) as a non-extractable HKDF key. */
export function importHkdfKey(material: Uint8Array<ArrayBuffer>): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", material, "HKDF", false, ["deriveBits", "deriveKey"]);
}

/** HKDF-SHA256(IKM = `key`, salt = empty, info) as raw bytes. */
export async function hkdfBytes(key: CryptoKey, info: Uint8Array<ArrayBuffer>, lengthBytes: number): Promise<Uint8Array<ArrayBuffer>> {
  const bits = await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt: EMPTY_SALT, info }, key, lengthBytes * 8);
  return new Uint8Array(bits);
}

/** HKDF-SHA256(IKM = `key`, salt = empty, info) as a non-extractable AES-256-GCM key. */
export function hkdfAesGcmKey(key: CryptoKey, info: Uint8Array<ArrayBuffer>): Promise<CryptoKey> {
  return crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: EMPTY_SALT, info },
    key,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}
