/**
 * The ciphertext format: AES-256-GCM under a key derived per salt from a
 * master key, bound by associated data to its purpose, self-describing so
 * that decryption finds the right master key during a rotation.
 *
 *   dtenc:v1:<keyId>:<iv>:<ciphertext‖tag>      (each part unpadded base64url)
 *
 * AAD = UTF-8("dtenc:v1:" + keyId + ":" + purpose), so the header cannot be
 * altered and a value copied to another row or field does not decrypt.
 * The original Dashtray format (base64 of iv‖ciphertext‖tag, key =
 * PBKDF2(master + salt, salt), no AAD) is still read and reported as
 * needing re-encryption.
 */
import { base64Decode, base64UrlDecode, base64UrlEncode, utf8Decode, utf8Encode } from "./encoding";
import { CryptoError, isCryptoError } from "./errors";
import { DEFAULT_PBKDF2_ITERATIONS, DerivedKeyCache, sharedKeyCache } from "./kdf";
import { KEY_ID_BYTES, Keyring, MasterKey } from "./keyring";

export const FORMAT_PREFIX = "dtenc";
export const FORMAT_VERSION = "v1";
export const IV_BYTES = 12;
export const TAG_BYTES = 16;

/** Where a secret lives: the salt selects the derived key, the purpose is bound as AAD. */
export interface SecretContext {
  /** Per-tenant salt, e.g. a project id (connection credentials) or a user id (AI keys). */
  salt: string;
  /** What the value is, e.g. "connections/<id>/credentials"; must match on decryption. */
  purpose: string;
}

/** Tuning knobs; production code uses the defaults. */
export interface CipherOptions {
  /** PBKDF2 iterations (default 100,000; the format assumes the default). */
  iterations?: number;
  /** Derived-key cache (default: the shared process-wide cache). */
  cache?: DerivedKeyCache;
}

export interface DecryptOptions extends CipherOptions {
  /** Accept a value that is not ciphertext at all as legacy plaintext (migration only). */
  allowPlaintext?: boolean;
}

/** What a stored value is, read from its shape alone (no key needed). */
export type CiphertextFormat =
  | { format: "v1"; keyId: string }
  | { format: "legacy" }
  | { format: "plaintext" }
  /** Starts like the current format but cannot be: another version, or a malformed value. */
  | { format: "invalid"; code: "UNSUPPORTED_VERSION" | "MALFORMED_CIPHERTEXT" };

export interface DecryptedSecret {
  plaintext: string;
  format: "v1" | "legacy" | "plaintext";
  /** Id of the master key that decrypted it (null for plaintext). */
  keyId: string | null;
  /** True unless the value is current-format ciphertext under the current key. */
  needsReencryption: boolean;
}

function checkContext(context: SecretContext): void {
  if (!context.salt) throw new CryptoError("INVALID_ARGUMENT", "encryption salt must be a non-empty string");
  if (!context.purpose) throw new CryptoError("INVALID_ARGUMENT", "encryption purpose must be a non-empty string");
}

function associatedData(keyId: string, purpose: string): Uint8Array<ArrayBuffer> {
  return utf8Encode(`${FORMAT_PREFIX}:${FORMAT_VERSION}:${keyId}:${purpose}`);
}

const MIN_LEGACY_BYTES = IV_BYTES + TAG_BYTES;

/**
 * Classifies a stored value without decrypting it: current format (with its
 * key id, after checking the structure: version, parts, lengths), invalid
 * (looks like the current format but is not), legacy base64 ciphertext, or
 * anything else (plaintext). Lets batch jobs skip values already under the
 * current key without deriving a key.
 */
export function describeCiphertext(value: string): CiphertextFormat {
  if (value.startsWith(`${FORMAT_PREFIX}:`)) {
    try {
      return { format: "v1", keyId: parseV1(value).keyId };
    } catch (error) {
      if (isCryptoError(error, "UNSUPPORTED_VERSION")) return { format: "invalid", code: "UNSUPPORTED_VERSION" };
      if (isCryptoError(error, "MALFORMED_CIPHERTEXT")) return { format: "invalid", code: "MALFORMED_CIPHERTEXT" };
      throw error;
    }
  }
  const legacy = base64Decode(value);
  if (legacy !== null && legacy.length >= MIN_LEGACY_BYTES) return { format: "legacy" };
  return { format: "plaintext" };
}

/** Encrypts `plaintext` under the keyring's current key for `context`. */
export async function encryptSecret(
  keyring: Keyring,
  plaintext: string,
  context: SecretContext,
  options: CipherOptions = {},
): Promise<string> {
  checkContext(context);
  const master = keyring.current;
  const key = await master.aesKey(
    "v1",
    context.salt,
    options.iterations ?? DEFAULT_PBKDF2_ITERATIONS,
    options.cache ?? sharedKeyCache,
  );
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: associatedData(master.id, context.purpose), tagLength: TAG_BYTES * 8 },
    key,
    utf8Encode(plaintext),
  );
  return [FORMAT_PREFIX, FORMAT_VERSION, master.id, base64UrlEncode(iv), base64UrlEncode(new Uint8Array(sealed))].join(":");
}

interface ParsedV1 {
  keyId: string;
  iv: Uint8Array<ArrayBuffer>;
  sealed: Uint8Array<ArrayBuffer>;
}

function parseV1(value: string): ParsedV1 {
  const parts = value.split(":");
  if (parts[1] !== FORMAT_VERSION) {
    throw new CryptoError("UNSUPPORTED_VERSION", "ciphertext has an unsupported format version");
  }
  if (parts.length !== 5) {
    throw new CryptoError("MALFORMED_CIPHERTEXT", "ciphertext does not have the expected 5 parts");
  }
  const [, , keyId = "", ivText = "", sealedText = ""] = parts;
  const keyIdBytes = base64UrlDecode(keyId);
  const iv = base64UrlDecode(ivText);
  const sealed = base64UrlDecode(sealedText);
  if (keyIdBytes === null || iv === null || sealed === null) {
    throw new CryptoError("MALFORMED_CIPHERTEXT", "ciphertext is not valid base64url");
  }
  if (keyIdBytes.length !== KEY_ID_BYTES || iv.length !== IV_BYTES || sealed.length < TAG_BYTES) {
    throw new CryptoError("MALFORMED_CIPHERTEXT", "ciphertext is truncated or has parts of the wrong length");
  }
  return { keyId, iv, sealed };
}

async function openAesGcm(
  key: CryptoKey,
  iv: Uint8Array<ArrayBuffer>,
  sealed: Uint8Array<ArrayBuffer>,
  additionalData?: Uint8Array<ArrayBuffer>,
): Promise<string | null> {
  let opened: ArrayBuffer;
  try {
    opened = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv, tagLength: TAG_BYTES * 8, ...(additionalData ? { additionalData } : {}) },
      key,
      sealed,
    );
  } catch {
    return null;
  }
  try {
    return utf8Decode(new Uint8Array(opened));
  } catch {
    throw new CryptoError("DECRYPTION_FAILED", "decrypted value is not valid UTF-8");
  }
}

async function decryptV1(keyring: Keyring, value: string, context: SecretContext, options: CipherOptions): Promise<DecryptedSecret> {
  const { keyId, iv, sealed } = parseV1(value);
  const master = keyring.get(keyId);
  if (!master) {
    throw new CryptoError("UNKNOWN_KEY_ID", `ciphertext was encrypted with master key "${keyId}", which is not configured`);
  }
  const key = await master.aesKey("v1", context.salt, options.iterations ?? DEFAULT_PBKDF2_ITERATIONS, options.cache ?? sharedKeyCache);
  const plaintext = await openAesGcm(key, iv, sealed, associatedData(keyId, context.purpose));
  if (plaintext === null) {
    throw new CryptoError(
      "DECRYPTION_FAILED",
      "ciphertext failed authentication (tampered, or wrong salt, purpose or key)",
    );
  }
  return { plaintext, format: "v1", keyId, needsReencryption: !master.equals(keyring.current) };
}

async function decryptLegacy(keyring: Keyring, bytes: Uint8Array<ArrayBuffer>, context: SecretContext, options: CipherOptions): Promise<DecryptedSecret> {
  const iv = bytes.subarray(0, IV_BYTES);
  const sealed = bytes.subarray(IV_BYTES);
  const keys: readonly MasterKey[] = keyring.all;
  for (const master of keys) {
    // The legacy format always used 100,000 iterations.
    const key = await master.aesKey("legacy", context.salt, DEFAULT_PBKDF2_ITERATIONS, options.cache ?? sharedKeyCache);
    const plaintext = await openAesGcm(key, iv, sealed);
    if (plaintext !== null) return { plaintext, format: "legacy", keyId: master.id, needsReencryption: true };
  }
  throw new CryptoError("DECRYPTION_FAILED", "legacy ciphertext could not be decrypted with any configured master key");
}

/**
 * Decrypts a stored value for `context`. Reads the current format (picking
 * the master key by its id) and the legacy Dashtray format; with
 * `allowPlaintext`, a value that is neither is returned as legacy plaintext.
 * A value that looks like ciphertext but fails to decrypt is always an error,
 * never reinterpreted as plaintext.
 */
export async function decryptSecret(
  keyring: Keyring,
  value: string,
  context: SecretContext,
  options: DecryptOptions = {},
): Promise<DecryptedSecret> {
  checkContext(context);
  // Anything that starts like the current format is decrypted as such (or fails with its parse error).
  if (value.startsWith(`${FORMAT_PREFIX}:`)) return decryptV1(keyring, value, context, options);
  const shape = describeCiphertext(value);
  if (shape.format === "legacy") {
    return decryptLegacy(keyring, base64Decode(value) ?? new Uint8Array(), context, options);
  }
  if (options.allowPlaintext) {
    return { plaintext: value, format: "plaintext", keyId: null, needsReencryption: true };
  }
  throw new CryptoError("NOT_CIPHERTEXT", "value is not ciphertext in a known format");
}
