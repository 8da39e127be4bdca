/**
 * An independent implementation of every stored Dashtray secret format
 * (legacy, dtenc:v1, dtenc:v2), written from docs/encryption.md alone and on
 * node:crypto (pbkdf2Sync, hkdfSync, createCipheriv), never WebCrypto, so it
 * shares no code path with src/convex/lib. Test-only: it checks that the
 * project's output matches the documented formats and vice versa.
 *
 * Where the document was ambiguous, this file follows its most literal
 * reading and says so in a comment marked "DOC:".
 */
import { createCipheriv, createDecipheriv, hkdfSync, pbkdf2Sync, randomBytes } from "node:crypto";

/** PBKDF2-HMAC-SHA256 iteration count of every format. */
export const PBKDF2_ITERATIONS = 100_000;
/** AES-GCM IV length (96 bits). */
export const IV_LENGTH = 12;
/** AES-GCM tag length (128 bits). */
export const TAG_LENGTH = 16;
/** Largest plaintext, in UTF-8 bytes. */
export const MAX_PLAINTEXT_BYTES = 65_536;
/** Characters of "dtenc:vN:" + key id + ":" + IV + ":". */
const HEADER_CHARS = 38;
/** Longest stored value any readable format may have: a v2 value of MAX_PLAINTEXT_BYTES. */
export const MAX_STORED_CHARS = HEADER_CHARS + Math.ceil((4 * (MAX_PLAINTEXT_BYTES + TAG_LENGTH)) / 3);

export type FormatName = "legacy" | "v1" | "v2";

/** Error codes as docs/encryption.md names them. */
export type IndependentErrorCode =
  | "INVALID_ARGUMENT"
  | "MALFORMED_CIPHERTEXT"
  | "UNSUPPORTED_VERSION"
  | "UNKNOWN_KEY_ID"
  | "DECRYPTION_FAILED"
  | "NOT_CIPHERTEXT"
  | "VALUE_TOO_LARGE";

/** A failure of the independent implementation, with the code the document gives it. */
export class IndependentFormatError extends Error {
  constructor(
    readonly code: IndependentErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
    this.name = "IndependentFormatError";
  }
}

/** What the reader of a row knows about the secret it read (never stored in the ciphertext). */
export interface SecretContext {
  /** Per-tenant salt: a project id or a user id. */
  salt: string;
  /** Names the field, e.g. `connections/<id>/credentials`. */
  purpose: string;
  /** The row's secret version (v2 AAD only). */
  version: number;
}

/** The master keys and the deployment's root salt. */
export interface IndependentKeys {
  current: string;
  previous: readonly string[];
  /** The 32 random bytes of encryptionSettings.rootSalt (decoded from base64url). */
  rootSalt: Uint8Array;
}

export interface DecryptedValue {
  plaintext: string;
  format: FormatName;
  /** The master key that opened the value: 0 is current, i > 0 is previous[i - 1]. */
  keyIndex: number;
}

const utf8 = (text: string): Buffer => Buffer.from(text, "utf8");

/** Strict UTF-8 decoding: invalid bytes are DECRYPTION_FAILED, as the doc says. */
function utf8Strict(bytes: Buffer): string {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new IndependentFormatError("DECRYPTION_FAILED", "plaintext is not UTF-8");
  }
}

// ---------------------------------------------------------------------------
// Encodings

/** Unpadded base64url (RFC 4648 §5). */
export function base64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64url");
}

/**
 * Canonical unpadded base64url: no padding, no standard-alphabet characters,
 * no length ≡ 1 (mod 4), no non-zero unused bits. Node's decoder is lenient,
 * so canonicity is checked by re-encoding.
 */
export function base64urlDecodeStrict(text: string): Buffer | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return null;
  if (text.length % 4 === 1) return null;
  const bytes = Buffer.from(text, "base64url");
  return bytes.toString("base64url") === text ? bytes : null;
}

/** Canonical padded standard base64 (the legacy format's encoding). */
export function base64DecodeStrict(text: string): Buffer | null {
  if (text.length % 4 !== 0) return null;
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return null;
  const bytes = Buffer.from(text, "base64");
  return bytes.toString("base64") === text ? bytes : null;
}

// ---------------------------------------------------------------------------
// Key derivation (memoised: the inputs are test constants, and PBKDF2 at
// 100,000 iterations is what makes tests slow).

const derived = new Map<string, Buffer>();
let pbkdf2Runs = 0;

/** How many PBKDF2 runs this module has made (tests use it to keep cost down). */
export function independentPbkdf2Runs(): number {
  return pbkdf2Runs;
}

function pbkdf2(password: Buffer, salt: Buffer, length: number): Buffer {
  const memo = `${password.toString("hex")}|${salt.toString("hex")}|${length}`;
  let bytes = derived.get(memo);
  if (!bytes) {
    pbkdf2Runs += 1;
    bytes = pbkdf2Sync(password, salt, PBKDF2_ITERATIONS, length, "sha256");
    derived.set(memo, bytes);
  }
  return bytes;
}

function hkdf(root: Buffer, info: string, length: number): Buffer {
  // "salt = empty": a zero-length HKDF salt.
  return Buffer.from(hkdfSync("sha256", root, Buffer.alloc(0), utf8(info), length));
}

/** Legacy key: PBKDF2(password = UTF-8(master key + salt), salt = UTF-8(salt)). */
export function legacyKey(masterKey: string, salt: string): Buffer {
  // DOC: the legacy line gives no key length; AES-256 needs 32 bytes.
  return pbkdf2(utf8(masterKey + salt), utf8(salt), 32);
}

/** v1 per-salt key: PBKDF2(password = UTF-8(master key), salt = UTF-8(salt)). */
export function v1Key(masterKey: string, salt: string): Buffer {
  return pbkdf2(utf8(masterKey), utf8(salt), 32);
}

/** v1 key id: base64url of an 8-byte PBKDF2 of the master key with a fixed label. */
export function v1KeyId(masterKey: string): string {
  return base64url(pbkdf2(utf8(masterKey), utf8("dashtray/master-key-id/v1"), 8));
}

/** v2 root: PBKDF2(password = UTF-8(master key), salt = the root salt's bytes). */
export function v2Root(masterKey: string, rootSalt: Uint8Array): Buffer {
  // DOC: "salt = rootSalt" where rootSalt is "32 random bytes ... (base64url)":
  // read literally, the PBKDF2 salt is the 32 bytes, not their base64url text.
  return pbkdf2(utf8(masterKey), Buffer.from(rootSalt), 32);
}

/** v2 key id: base64url(HKDF(root, info "dashtray/v2/key-id", 8 bytes)). */
export function v2KeyId(root: Buffer): string {
  return base64url(hkdf(root, "dashtray/v2/key-id", 8));
}

/** v2 per-salt AES key: HKDF(root, info "dashtray/v2/aes-256-gcm/" + salt, 32 bytes). */
export function v2AesKey(root: Buffer, salt: string): Buffer {
  return hkdf(root, `dashtray/v2/aes-256-gcm/${salt}`, 32);
}

/** The v1 AAD: UTF-8("dtenc:v1:" + keyId + ":" + purpose). */
export function v1Aad(keyId: string, purpose: string): Buffer {
  return utf8(`dtenc:v1:${keyId}:${purpose}`);
}

/** The v2 AAD: UTF-8("dtenc:v2:" + keyId + ":" + version + ":" + purpose), version in decimal. */
export function v2Aad(keyId: string, version: number, purpose: string): Buffer {
  return utf8(`dtenc:v2:${keyId}:${String(version)}:${purpose}`);
}

// ---------------------------------------------------------------------------
// AES-256-GCM on node:crypto

function seal(key: Buffer, iv: Buffer, plaintext: Buffer, aad: Buffer | null): Buffer {
  const cipher = createCipheriv("aes-256-gcm", key, iv, { authTagLength: TAG_LENGTH });
  if (aad) cipher.setAAD(aad);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([body, cipher.getAuthTag()]);
}

function open(key: Buffer, iv: Buffer, sealed: Buffer, aad: Buffer | null): Buffer | null {
  if (sealed.length < TAG_LENGTH) return null;
  const decipher = createDecipheriv("aes-256-gcm", key, iv, { authTagLength: TAG_LENGTH });
  if (aad) decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_LENGTH));
  try {
    return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_LENGTH)), decipher.final()]);
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------
// Validation

function checkContext(context: SecretContext, format: FormatName): void {
  if (context.salt.length === 0) throw new IndependentFormatError("INVALID_ARGUMENT", "empty salt");
  if (context.purpose.length === 0) throw new IndependentFormatError("INVALID_ARGUMENT", "empty purpose");
  // DOC: the document says the version is a non-negative integer but not
  // what a bad one does; INVALID_ARGUMENT is the code for bad arguments.
  if (format === "v2" && !(Number.isSafeInteger(context.version) && context.version >= 0)) {
    throw new IndependentFormatError("INVALID_ARGUMENT", "version must be a non-negative safe integer");
  }
}

function plaintextBytes(plaintext: string): Buffer {
  const bytes = utf8(plaintext);
  if (bytes.length > MAX_PLAINTEXT_BYTES) throw new IndependentFormatError("VALUE_TOO_LARGE", "plaintext too large");
  return bytes;
}

function freshIv(iv: Uint8Array | undefined): Buffer {
  const bytes = iv ? Buffer.from(iv) : randomBytes(IV_LENGTH);
  if (bytes.length !== IV_LENGTH) throw new IndependentFormatError("INVALID_ARGUMENT", "IV must be 12 bytes");
  return bytes;
}

// ---------------------------------------------------------------------------
// Encryption (one function per format; the fixed IV is for committed vectors only)

/** The original Dashtray format: base64(iv ‖ ciphertext ‖ tag), no AAD. */
export function encryptLegacy(masterKey: string, salt: string, plaintext: string, iv?: Uint8Array): string {
  checkContext({ salt, purpose: "-", version: 0 }, "legacy");
  const ivBytes = freshIv(iv);
  const sealed = seal(legacyKey(masterKey, salt), ivBytes, plaintextBytes(plaintext), null);
  return Buffer.concat([ivBytes, sealed]).toString("base64");
}

/** dtenc:v1:<keyId>:<iv>:<ciphertext‖tag>. */
export function encryptV1(masterKey: string, context: SecretContext, plaintext: string, iv?: Uint8Array): string {
  checkContext(context, "v1");
  const keyId = v1KeyId(masterKey);
  const ivBytes = freshIv(iv);
  const sealed = seal(v1Key(masterKey, context.salt), ivBytes, plaintextBytes(plaintext), v1Aad(keyId, context.purpose));
  return `dtenc:v1:${keyId}:${base64url(ivBytes)}:${base64url(sealed)}`;
}

/** dtenc:v2:<keyId>:<iv>:<ciphertext‖tag>. */
export function encryptV2(
  masterKey: string,
  rootSalt: Uint8Array,
  context: SecretContext,
  plaintext: string,
  iv?: Uint8Array,
): string {
  return encryptV2Bytes(masterKey, rootSalt, context, plaintextBytes(plaintext), iv);
}

/**
 * v2 over raw plaintext bytes, with no size or UTF-8 check, so tests can make
 * values the project must refuse (bytes that are not UTF-8, oversized values).
 */
export function encryptV2Bytes(
  masterKey: string,
  rootSalt: Uint8Array,
  context: SecretContext,
  plaintext: Uint8Array,
  iv?: Uint8Array,
): string {
  checkContext(context, "v2");
  const root = v2Root(masterKey, rootSalt);
  const keyId = v2KeyId(root);
  const ivBytes = freshIv(iv);
  const aad = v2Aad(keyId, context.version, context.purpose);
  const sealed = seal(v2AesKey(root, context.salt), ivBytes, Buffer.from(plaintext), aad);
  return `dtenc:v2:${keyId}:${base64url(ivBytes)}:${base64url(sealed)}`;
}

// ---------------------------------------------------------------------------
// Classification and decryption

export type Shape = "dtenc" | "legacy" | "plaintext";

/** Classifies a stored value by its shape alone (docs: "describeCiphertext"). */
export function shapeOf(value: string): Shape {
  if (value.startsWith("dtenc:")) return "dtenc";
  const bytes = base64DecodeStrict(value);
  if (bytes && bytes.length >= IV_LENGTH + TAG_LENGTH) return "legacy";
  return "plaintext";
}

interface ParsedDtenc {
  version: "v1" | "v2";
  keyId: string;
  iv: Buffer;
  sealed: Buffer;
}

function parseDtenc(value: string): ParsedDtenc {
  const parts = value.split(":");
  // DOC: the version check comes before the part count, so "dtenc:v9" alone is
  // UNSUPPORTED_VERSION; the document does not order the two checks.
  const version = parts[1];
  if (version !== "v1" && version !== "v2") throw new IndependentFormatError("UNSUPPORTED_VERSION", "unknown version");
  if (parts.length !== 5) throw new IndependentFormatError("MALFORMED_CIPHERTEXT", "wrong number of parts");
  const [, , keyIdText, ivText, sealedText] = parts as [string, string, string, string, string];
  const keyIdBytes = base64urlDecodeStrict(keyIdText);
  const iv = base64urlDecodeStrict(ivText);
  const sealed = base64urlDecodeStrict(sealedText);
  if (!keyIdBytes || !iv || !sealed) throw new IndependentFormatError("MALFORMED_CIPHERTEXT", "bad base64url");
  if (keyIdBytes.length !== 8 || iv.length !== IV_LENGTH) {
    throw new IndependentFormatError("MALFORMED_CIPHERTEXT", "wrong part length");
  }
  if (sealed.length < TAG_LENGTH) throw new IndependentFormatError("MALFORMED_CIPHERTEXT", "truncated");
  return { version, keyId: keyIdText, iv, sealed };
}

function allKeys(keys: IndependentKeys): string[] {
  return [keys.current, ...keys.previous];
}

function decryptV2(keys: IndependentKeys, parsed: ParsedDtenc, context: SecretContext): DecryptedValue {
  const masters = allKeys(keys);
  for (let index = 0; index < masters.length; index++) {
    const root = v2Root(masters[index]!, keys.rootSalt);
    if (v2KeyId(root) !== parsed.keyId) continue;
    const aad = v2Aad(parsed.keyId, context.version, context.purpose);
    const opened = open(v2AesKey(root, context.salt), parsed.iv, parsed.sealed, aad);
    if (!opened) throw new IndependentFormatError("DECRYPTION_FAILED", "authentication failed");
    return { plaintext: utf8Strict(opened), format: "v2", keyIndex: index };
  }
  throw new IndependentFormatError("UNKNOWN_KEY_ID", "no configured master key has this key id");
}

function decryptV1(keys: IndependentKeys, parsed: ParsedDtenc, context: SecretContext): DecryptedValue {
  // DOC: "Reading it tries the configured master keys in order (current
  // first) and lets the GCM tag decide" (Format v1) against "the keyring
  // looks up the key whose id the value carries ... UNKNOWN_KEY_ID" (Keyring
  // and rotation). The first, newer text is followed: every key is tried,
  // and a value no key opens is DECRYPTION_FAILED.
  const masters = allKeys(keys);
  const aad = v1Aad(parsed.keyId, context.purpose);
  for (let index = 0; index < masters.length; index++) {
    const opened = open(v1Key(masters[index]!, context.salt), parsed.iv, parsed.sealed, aad);
    if (opened) return { plaintext: utf8Strict(opened), format: "v1", keyIndex: index };
  }
  throw new IndependentFormatError("DECRYPTION_FAILED", "no configured master key opens this value");
}

function decryptLegacy(keys: IndependentKeys, bytes: Buffer, context: SecretContext): DecryptedValue {
  const masters = allKeys(keys);
  const iv = bytes.subarray(0, IV_LENGTH);
  const sealed = bytes.subarray(IV_LENGTH);
  for (let index = 0; index < masters.length; index++) {
    const opened = open(legacyKey(masters[index]!, context.salt), iv, sealed, null);
    if (opened) return { plaintext: utf8Strict(opened), format: "legacy", keyIndex: index };
  }
  throw new IndependentFormatError("DECRYPTION_FAILED", "no configured master key opens this legacy value");
}

/**
 * Decrypts a stored value of any readable format. Plaintext-shaped values
 * are NOT_CIPHERTEXT (the independent implementation has no allowPlaintext).
 */
export function decryptAny(keys: IndependentKeys, value: string, context: SecretContext): DecryptedValue {
  if (value.length > MAX_STORED_CHARS) throw new IndependentFormatError("VALUE_TOO_LARGE", "stored value too large");
  const shape = shapeOf(value);
  if (shape === "plaintext") throw new IndependentFormatError("NOT_CIPHERTEXT", "value is not ciphertext");
  if (shape === "legacy") {
    checkContext(context, "legacy");
    return decryptLegacy(keys, base64DecodeStrict(value)!, context);
  }
  const parsed = parseDtenc(value);
  checkContext(context, parsed.version);
  return parsed.version === "v2" ? decryptV2(keys, parsed, context) : decryptV1(keys, parsed, context);
}
