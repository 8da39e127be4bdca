/**
 * Typed failures of the encryption core. Every code is stable (the Convex
 * layer maps them to ConvexError codes and the docs list them); messages
 * never contain key material, plaintext or ciphertext.
 */
export type CryptoErrorCode =
  /** MASTER_ENCRYPTION_KEY is not set. */
  | "MASTER_KEY_MISSING"
  /** A master key (current or old) is shorter than the minimum length. */
  | "MASTER_KEY_TOO_SHORT"
  /** MASTER_ENCRYPTION_KEY contains a comma (OLD_MASTER_KEY's separator), so it could not be rotated out. */
  | "MASTER_KEY_INVALID"
  /** The value is not well-formed ciphertext (bad base64, wrong parts, truncated). */
  | "MALFORMED_CIPHERTEXT"
  /** The ciphertext names a format version this code does not know. */
  | "UNSUPPORTED_VERSION"
  /** The ciphertext was made with a master key that is not in the keyring. */
  | "UNKNOWN_KEY_ID"
  /** Authentication failed: tampered data, wrong salt, wrong key or wrong purpose. */
  | "DECRYPTION_FAILED"
  /** The value is not ciphertext and the caller did not allow legacy plaintext. */
  | "NOT_CIPHERTEXT"
  /** A caller passed an unusable argument (empty salt or purpose, bad secret version, bad iterations). */
  | "INVALID_ARGUMENT"
  /** A plaintext to encrypt, or a stored value to read, is larger than the format allows (MAX_PLAINTEXT_BYTES). */
  | "VALUE_TOO_LARGE"
  /** The deployment's root salt (encryptionSettings.rootSalt) is missing or not base64url of 32 bytes. */
  | "ROOT_SALT_INVALID";

/** An encryption-core failure with a stable code and a secret-free message. */
export class CryptoError extends Error {
  readonly code: CryptoErrorCode;
  /**
   * The configured key the failure is about, when it is about one:
   * "MASTER_ENCRYPTION_KEY" or "OLD_MASTER_KEY (entry i)" (a place, never a value).
   */
  readonly source: string | undefined;

  constructor(code: CryptoErrorCode, message: string, source?: string) {
    super(message);
    this.name = "CryptoError";
    this.code = code;
    this.source = source;
  }
}

/** Whether `error` is a CryptoError (optionally with a given code). */
export function isCryptoError(error: unknown, code?: CryptoErrorCode): error is CryptoError {
  return error instanceof CryptoError && (code === undefined || error.code === code);
}
