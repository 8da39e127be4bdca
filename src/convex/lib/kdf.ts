/**
 * Key derivation on WebCrypto: PBKDF2-HMAC-SHA256 (the expensive step, run
 * at most once per master key per call for format v2) and HKDF-SHA256 (per-salt
 * keys and key ids from a v2 root, microseconds each), computed with
 * HMAC-SHA256 so that it runs on every Convex backend. No caching here: a
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

/*
 * HKDF-SHA256 (RFC 5869) written as its two HMAC-SHA256 steps. Convex's
 * runtime implements HMAC everywhere but HKDF only in backends from late
 * July 2026 (older ones fail with an error a function cannot catch), so
 * crypto.subtle is never asked for "HKDF". The output is byte-identical to
 * crypto.subtle's HKDF (RFC 5869 vectors in src/test/lib/kdfVectors.test.ts).
 */

/** SHA-256 output bytes (HashLen in RFC 5869). */
const HASH_BYTES = 32;
/**
 * The extract salt when none is given: RFC 5869 says HashLen zero bytes. It is
 * the same HMAC key as an empty salt (HMAC pads every key with zeros), and
 * WebCrypto refuses to import an empty HMAC key.
 */
const ZERO_SALT = new Uint8Array(HASH_BYTES);

function importHmacKey(material: Uint8Array<ArrayBuffer>): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", material, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
}

/**
 * HKDF-Extract: PRK = HMAC-SHA256(salt, IKM), returned as a non-extractable
 * HMAC key for HKDF-Expand (its bytes are wiped once imported). An empty
 * `salt` (what format v2 uses) is HashLen zeros, as RFC 5869 says.
 */
export async function hkdfExtract(ikm: Uint8Array<ArrayBuffer>, salt: Uint8Array<ArrayBuffer> = EMPTY_SALT): Promise<CryptoKey> {
  const saltKey = await importHmacKey(salt.length === 0 ? ZERO_SALT : salt);
  const prk = new Uint8Array(await crypto.subtle.sign("HMAC", saltKey, ikm));
  try {
    return await importHmacKey(prk);
  } finally {
    prk.fill(0);
  }
}

/** HKDF-Expand: the first `lengthBytes` of T(1) ‖ T(2) ‖ …, T(i) = HMAC(PRK, T(i-1) ‖ info ‖ i). */
export async function hkdfExpand(prk: CryptoKey, info: Uint8Array<ArrayBuffer>, lengthBytes: number): Promise<Uint8Array<ArrayBuffer>> {
  if (!Number.isInteger(lengthBytes) || lengthBytes < 1 || lengthBytes > 255 * HASH_BYTES) {
    throw new CryptoError("INVALID_ARGUMENT", "HKDF output length must be 1 to 8160 bytes");
  }
  const output = new Uint8Array(Math.ceil(lengthBytes / HASH_BYTES) * HASH_BYTES);
  let previous = new Uint8Array(0);
  for (let block = 1; block * HASH_BYTES <= output.length; block++) {
    const input = new Uint8Array(previous.length + info.length + 1);
    input.set(previous, 0);
    input.set(info, previous.length);
    input[input.length - 1] = block;
    previous = new Uint8Array(await crypto.subtle.sign("HMAC", prk, input));
    output.set(previous, (block - 1) * HASH_BYTES);
    input.fill(0);
  }
  previous.fill(0);
  const result = output.slice(0, lengthBytes);
  output.fill(0);
  return result;
}

/** HKDF-SHA256(IKM, salt, info) as `lengthBytes` raw bytes: extract, then expand. */
export async function hkdfSha256(
  ikm: Uint8Array<ArrayBuffer>,
  salt: Uint8Array<ArrayBuffer>,
  info: Uint8Array<ArrayBuffer>,
  lengthBytes: number,
): Promise<Uint8Array<ArrayBuffer>> {
  return hkdfExpand(await hkdfExtract(ikm, salt), info, lengthBytes);
}

/** HKDF-Expand(PRK, info, 32 bytes) as a non-extractable AES-256-GCM key (the bytes are wiped once imported). */
export async function hkdfAesGcmKey(prk: CryptoKey, info: Uint8Array<ArrayBuffer>): Promise<CryptoKey> {
  const bytes = await hkdfExpand(prk, info, 32);
  try {
    return await crypto.subtle.importKey("raw", bytes, { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
  } finally {
    bytes.fill(0);
  }
}
