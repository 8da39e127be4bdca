/**
 * The ciphertext formats (docs/encryption.md). New values are written in
 * format v2:
 *
 *   dtenc:v2:<keyId>:<iv>:<ciphertext‖tag>      (each part unpadded base64url)
 *
 * AES-256-GCM under HKDF(root, salt), where root = PBKDF2(master key, the
 * deployment's root salt); AAD = UTF-8("dtenc:v2:" + keyId + ":" + version +
 * ":" + purpose), so the header cannot be altered, a value copied to another
 * row or field fails, and so does a value the row held before its secret was
 * last replaced. Format v1 (PBKDF2 per salt, no version) and the original
 * Dashtray format (base64 of iv‖ciphertext‖tag, no AAD) are still read and
 * reported as needing re-encryption.
 */
import { base64Decode, base64UrlDecode, base64UrlEncode, utf8Decode, utf8Encode } from "./encoding";
import { CryptoError, isCryptoError } from "./errors";
import { KEY_ID_BYTES, type Keyring, type MasterKey } from "./keyring";

export const FORMAT_PREFIX = "dtenc";
/** The version new values are written in. */
export const FORMAT_VERSION = "v2";
/** The previous version, still read. */
export const V1_FORMAT_VERSION = "v1";
export const IV_BYTES = 12;
export const TAG_BYTES = 16;

/** Largest plaintext, in UTF-8 bytes, that encryptSecret accepts. */
export const MAX_PLAINTEXT_BYTES = 65_536;

/** Characters of a v2 value holding `plaintextBytes` bytes: "dtenc:v2:" + id + ":" + iv + ":" + sealed. */
export function v2CiphertextLength(plaintextBytes: number): number {
  return 38 + Math.ceil((4 * (plaintextBytes + TAG_BYTES)) / 3);
}

/**
 * Longest stored value any reader accepts: a v2 ciphertext of
 * MAX_PLAINTEXT_BYTES (87,441 characters; v1 values are as long, legacy ones
 * shorter). Anything longer is VALUE_TOO_LARGE before it is parsed.
 */
export const MAX_STORED_VALUE_LENGTH = v2CiphertextLength(MAX_PLAINTEXT_BYTES);

/** Where a secret lives: the salt selects the derived key; purpose and version are bound as AAD. */
export interface SecretContext {
  /** Per-tenant salt, e.g. a project id (connection credentials) or a user id (AI keys). */
  salt: string;
  /** What the value is, e.g. "connections/<id>/credentials"; must match on decryption. */
  purpose: string;
  /** The row's secret version (non-negative safe integer; bumped whenever the secret is replaced). Bound by v2 only. */
  version: number;
}

export interface DecryptOptions {
  /** Accept a value that is not ciphertext at all as legacy plaintext (migration only). */
  allowPlaintext?: boolean;
  /**
   * Index in `keyring.all` of the key that most likely wrote the value
   * (e.g. from its header), tried first: saves the derivations of keys tried
   * before it. Only an optimisation: every key is still tried.
   */
  keyHint?: number;
  /**
   * Refuse the original Dashtray format (LEGACY_FORMAT_RETIRED) instead of
   * trying keys: set once a deployment has no such values left, because
   * that format has no associated data and so would decrypt in any row.
   */
  refuseLegacy?: boolean;
  /**
   * Refuse v1 and original-format values (DECRYPTION_FAILED): they bind no
   * secret version. Callers set it when the row's version is above 0: only
   * format v2 was ever written at such a version, so an older-format value
   * there is a restored copy of a secret the row has replaced since.
   */
  requireVersionBinding?: boolean;
}

/** What a stored value is, read from its shape alone (no key needed). */
export type CiphertextFormat =
  | { format: "v2"; keyId: string }
  | { format: "v1"; keyId: string }
  | { format: "legacy" }
  | { format: "plaintext" }
  /** Starts like the dtenc format but cannot be read (another version, malformed), or is too long for any format. */
  | { format: "invalid"; code: "UNSUPPORTED_VERSION" | "MALFORMED_CIPHERTEXT" | "VALUE_TOO_LARGE" };

export interface DecryptedSecret {
  plaintext: string;
  format: "v2" | "v1" | "legacy" | "plaintext";
  /**
   * The key id the value carries in its header: the v2 id for v2, the v1 id
   * for v1; null for legacy ciphertext and plaintext, which carry none
   * (computing one would cost a derivation).
   */
  keyId: string | null;
  /** True unless the value is v2 under the current key. */
  needsReencryption: boolean;
}

function checkContext(context: SecretContext): void {
  if (!context.salt) throw new CryptoError("INVALID_ARGUMENT", "encryption salt must be a non-empty string");
  if (!context.purpose) throw new CryptoError("INVALID_ARGUMENT", "encryption purpose must be a non-empty string");
  if (!Number.isSafeInteger(context.version) || context.version < 0) {
    throw new CryptoError("INVALID_ARGUMENT", "secret version must be a non-negative safe integer");
  }
}

function checkStoredLength(value: string): void {
  if (value.length > MAX_STORED_VALUE_LENGTH) {
    throw new CryptoError(
      "VALUE_TOO_LARGE",
      `stored value is longer than any ciphertext of at most ${MAX_PLAINTEXT_BYTES} bytes (${MAX_STORED_VALUE_LENGTH} characters)`,
    );
  }
}

function v2AssociatedData(keyId: string, version: number, purpose: string): Uint8Array<ArrayBuffer> {
  return utf8Encode(`${FORMAT_PREFIX}:${FORMAT_VERSION}:${keyId}:${String(version)}:${purpose}`);
}

function v1AssociatedData(keyId: string, purpose: string): Uint8Array<ArrayBuffer> {
  return utf8Encode(`${FORMAT_PREFIX}:${V1_FORMAT_VERSION}:${keyId}:${purpose}`);
}

const MIN_LEGACY_BYTES = IV_BYTES + TAG_BYTES;

interface ParsedDtenc {
  version: "v1" | "v2";
  keyId: string;
  iv: Uint8Array<ArrayBuffer>;
  sealed: Uint8Array<ArrayBuffer>;
}

/** Parses a value starting with "dtenc:" (v1 or v2; both have the same parts and lengths). */
function parseDtenc(value: string): ParsedDtenc {
  const parts = value.split(":");
  const version = parts[1];
  if (version !== FORMAT_VERSION && version !== V1_FORMAT_VERSION) {
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
  return { version, keyId, iv, sealed };
}

/**
 * Classifies a stored value without decrypting it: v2 or v1 (with the key
 * id in its header, after checking the structure: version, parts,
 * lengths), invalid (starts with "dtenc:" but cannot be read, or is longer
 * than any ciphertext), legacy base64 ciphertext, or anything else
 * (plaintext). Lets batch jobs sort values by key and format with no crypto.
 */
export function describeCiphertext(value: string): CiphertextFormat {
  if (value.length > MAX_STORED_VALUE_LENGTH) return { format: "invalid", code: "VALUE_TOO_LARGE" };
  if (value.startsWith(`${FORMAT_PREFIX}:`)) {
    try {
      const { version, keyId } = parseDtenc(value);
      return { format: version, keyId };
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

/**
 * Encrypts `plaintext` (at most MAX_PLAINTEXT_BYTES of UTF-8, else
 * VALUE_TOO_LARGE) in format v2 under the keyring's current key for
 * `context`. Costs the current key's root (one PBKDF2) the first time a
 * keyring needs it, and HKDF per salt.
 */
export async function encryptSecret(keyring: Keyring, plaintext: string, context: SecretContext): Promise<string> {
  checkContext(context);
  // UTF-8 never has fewer bytes than UTF-16 code units: a long string is refused before encoding it.
  const bytes = plaintext.length > MAX_PLAINTEXT_BYTES ? null : utf8Encode(plaintext);
  if (bytes === null || bytes.length > MAX_PLAINTEXT_BYTES) {
    throw new CryptoError("VALUE_TOO_LARGE", `plaintext is larger than ${MAX_PLAINTEXT_BYTES} bytes`);
  }
  const master = keyring.current;
  const [keyId, key] = await Promise.all([master.keyId(), master.aesKey("v2", context.salt)]);
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: v2AssociatedData(keyId, context.version, context.purpose), tagLength: TAG_BYTES * 8 },
    key,
    bytes,
  );
  return [FORMAT_PREFIX, FORMAT_VERSION, keyId, base64UrlEncode(iv), base64UrlEncode(new Uint8Array(sealed))].join(":");
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

const AUTHENTICATION_FAILED = "ciphertext failed authentication (tampered, or wrong salt, purpose, version or key)";

/** Keys in trial order: the hinted one first, then the rest, current first. */
function trialOrder(keyring: Keyring, hint: number | undefined): readonly MasterKey[] {
  const keys = keyring.all;
  const hinted = hint === undefined ? undefined : keys[hint];
  return hinted ? [hinted, ...keys.filter((key) => key !== hinted)] : keys;
}

async function decryptV2(keyring: Keyring, parsed: ParsedDtenc, context: SecretContext, options: DecryptOptions): Promise<DecryptedSecret> {
  const { keyId, iv, sealed } = parsed;
  const master = await keyring.findByKeyId(keyId, options.keyHint === undefined ? {} : { hint: options.keyHint });
  if (!master) {
    throw keyring.keyNotFound(
      new CryptoError("UNKNOWN_KEY_ID", `ciphertext was encrypted with master key "${keyId}", which is not configured`),
    );
  }
  const key = await master.aesKey("v2", context.salt);
  const plaintext = await openAesGcm(key, iv, sealed, v2AssociatedData(keyId, context.version, context.purpose));
  if (plaintext === null) throw new CryptoError("DECRYPTION_FAILED", AUTHENTICATION_FAILED);
  return { plaintext, format: "v2", keyId, needsReencryption: master !== keyring.current };
}

/** v1: no key id is derived; each configured key is tried (hinted or current first) and the GCM tag decides. */
async function decryptV1(keyring: Keyring, parsed: ParsedDtenc, context: SecretContext, options: DecryptOptions): Promise<DecryptedSecret> {
  const { keyId, iv, sealed } = parsed;
  const additionalData = v1AssociatedData(keyId, context.purpose);
  for (const master of trialOrder(keyring, options.keyHint ?? keyring.hintFor(keyId))) {
    const plaintext = await openAesGcm(await master.aesKey("v1", context.salt), iv, sealed, additionalData);
    if (plaintext !== null) return { plaintext, format: "v1", keyId, needsReencryption: true };
  }
  throw keyring.keyNotFound(
    new CryptoError(
      "DECRYPTION_FAILED",
      "v1 ciphertext could not be decrypted with any configured master key (its key is not configured, or it was tampered with, or wrong salt or purpose)",
    ),
  );
}

async function decryptLegacy(keyring: Keyring, bytes: Uint8Array<ArrayBuffer>, context: SecretContext, options: DecryptOptions): Promise<DecryptedSecret> {
  const iv = bytes.subarray(0, IV_BYTES);
  const sealed = bytes.subarray(IV_BYTES);
  for (const master of trialOrder(keyring, options.keyHint)) {
    const plaintext = await openAesGcm(await master.aesKey("legacy", context.salt), iv, sealed);
    if (plaintext !== null) return { plaintext, format: "legacy", keyId: null, needsReencryption: true };
  }
  throw keyring.keyNotFound(
    new CryptoError("DECRYPTION_FAILED", "legacy ciphertext could not be decrypted with any configured master key"),
  );
}

/**
 * Decrypts a stored value for `context`. Reads v2 (finding the master key
 * by the id in its header), v1 and the legacy Dashtray format (trying the
 * configured keys, current first); with `allowPlaintext`, a value that is
 * none of these is returned as legacy plaintext. A value that looks like
 * ciphertext but fails to decrypt is always an error, never reinterpreted as
 * plaintext. A value longer than MAX_STORED_VALUE_LENGTH is VALUE_TOO_LARGE.
 * With `refuseLegacy`, a value in the original format is LEGACY_FORMAT_RETIRED.
 */
/** For `requireVersionBinding`: a v1 or original-format value, which binds no secret version. */
function refuseUnversioned(): never {
  throw new CryptoError(
    "DECRYPTION_FAILED",
    "value is in a format that binds no secret version (v1 or original), where only format v2 can be",
  );
}

export async function decryptSecret(
  keyring: Keyring,
  value: string,
  context: SecretContext,
  options: DecryptOptions = {},
): Promise<DecryptedSecret> {
  checkContext(context);
  checkStoredLength(value);
  // Anything that starts like the dtenc format is decrypted as such (or fails with its parse error).
  if (value.startsWith(`${FORMAT_PREFIX}:`)) {
    const parsed = parseDtenc(value);
    if (parsed.version === FORMAT_VERSION) return decryptV2(keyring, parsed, context, options);
    if (options.requireVersionBinding) refuseUnversioned();
    return decryptV1(keyring, parsed, context, options);
  }
  const legacy = base64Decode(value);
  if (legacy !== null && legacy.length >= MIN_LEGACY_BYTES) {
    if (options.refuseLegacy) {
      throw new CryptoError("LEGACY_FORMAT_RETIRED", "value is in the original Dashtray format, which this deployment no longer reads");
    }
    if (options.requireVersionBinding) refuseUnversioned();
    return decryptLegacy(keyring, legacy, context, options);
  }
  if (options.allowPlaintext) {
    return { plaintext: value, format: "plaintext", keyId: null, needsReencryption: true };
  }
  throw new CryptoError("NOT_CIPHERTEXT", "value is not ciphertext in a known format");
}
