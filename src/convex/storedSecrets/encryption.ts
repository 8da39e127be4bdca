/**
 * Where each secret's salt, purpose and version come from, in one place, so
 * that writers, decrypting actions and the rotation job always agree:
 * - connection credentials: salt = project id, purpose = "connections/<id>/credentials",
 *   version = connections.secretVersion
 * - AI provider keys: salt = user id, purpose = "aiKeys/<userId>/apiKey", version = aiKeys.secretVersion
 * - OAuth PKCE code verifiers: salt = project id, purpose = "oauthStates/<stateId>/codeVerifier",
 *   version = 0 (written once, never replaced). OAuth tokens are connection credentials.
 * - OAuth authorization codes waiting for connections.finishOAuth: salt = project id,
 *   purpose = "oauthStates/<stateId>/code", version = 0.
 * The master keys come from MASTER_ENCRYPTION_KEY and OLD_MASTER_KEY; the
 * deployment's root salt from the encryptionSettings table (created by the
 * first mutation that encrypts). Once the upgrade job found no value in the
 * original Dashtray format left, encryptionSettings.legacyRetiredAt is set
 * and every decryption here refuses that format (LEGACY_FORMAT_RETIRED);
 * until then a decryption reports the format it read, so callers audit
 * legacy reads as such. Crypto failures leave here as client-safe
 * ConvexErrors (see errors.ts).
 */
import { type MutationCtx, type QueryCtx } from "../_generated/server";
import { env } from "../env";
import type { Id } from "../_generated/dataModel";
import { appError, toAppError } from "../errors";
import { decryptSecret, describeCiphertext, encryptSecret, MAX_PLAINTEXT_BYTES, type DecryptedSecret } from "../lib/cipher";
import { isCryptoError } from "../lib/errors";
import { hmacSha256Hex, randomToken } from "../lib/hash";
import { Keyring, parseRootSalt, ROOT_SALT_BYTES } from "../lib/keyring";
import {
  aiKeySecretContext,
  authorizationCodeSecretContext,
  codeVerifierSecretContext,
  connectionSecretContext,
  decryptPolicy,
  OAUTH_ACCOUNT_HASH_PURPOSE,
  registered,
  REGISTRY,
  type LegacyPolicy,
} from "./registry";
import type { Credentials, KeyIdOrder } from "../validators";

// Salts, purposes and versions are defined once, in the registry of stored secrets.
export {
  aiKeySecretContext,
  authorizationCodeSecretContext,
  codeVerifierSecretContext,
  connectionSecretContext,
  type LegacyPolicy,
} from "./registry";

async function mapCryptoErrors<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    return toAppError(error);
  }
}

/** Encryption errors for clients: a plaintext over the size limit is the caller's INVALID_ARGUMENT. */
async function mapEncryptionErrors<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (isCryptoError(error, "VALUE_TOO_LARGE")) {
      throw appError("INVALID_ARGUMENT", `This secret is too large (at most ${MAX_PLAINTEXT_BYTES} bytes)`);
    }
    return toAppError(error);
  }
}

/**
 * What an OAuth connection stores of the provider account that granted it
 * (connections.oauthAccountHash): HMAC-SHA256 keyed with the deployment's
 * root salt, over OAUTH_ACCOUNT_HASH_PURPOSE, the service and the account
 * id. Equal ids give equal hashes within one deployment (what revocation
 * compares); the id itself is never stored, and the hash says nothing
 * outside this deployment. The key is not secret from someone who can read
 * the database: such a reader could test a guessed account id. A root salt
 * never changes, so the hashes survive master-key rotations. Null without a
 * root salt (nothing was ever encrypted in format v2).
 */
export async function oauthAccountHash(rootSalt: string | null, service: string, accountId: string): Promise<string | null> {
  const key = parseRootSalt(rootSalt);
  return key === null ? null : hmacSha256Hex(key, `${OAUTH_ACCOUNT_HASH_PURPOSE}${service}\u0000${accountId}`);
}

/**
 * The deployment's root salt, or null if nothing was ever encrypted in
 * format v2. Should two rows ever exist, the oldest one is the salt.
 */
export async function readRootSalt(db: QueryCtx["db"]): Promise<string | null> {
  const settings = await db.query("encryptionSettings").order("asc").first();
  return settings?.rootSalt ?? null;
}


/**
 * The deployment's root salt and legacy policy, read together by the query
 * that loads a ciphertext, so decrypting costs no extra call.
 */
export async function readEncryptionSettings(
  db: QueryCtx["db"],
): Promise<{ rootSalt: string | null; keyIdOrder: KeyIdOrder | null } & LegacyPolicy> {
  const settings = await db.query("encryptionSettings").order("asc").first();
  return {
    rootSalt: settings?.rootSalt ?? null,
    keyIdOrder: settings?.keyIdOrder ?? null,
    legacyRetired: settings?.legacyRetiredAt !== undefined,
  };
}

/**
 * Records the configured keys' ids (computed by a rotation job's start) as
 * hints for decrypting calls: during the rotation, a value under an old key
 * then costs that key's PBKDF2 root alone, not also the roots of the keys
 * tried before it (docs/encryption.md, "Cost per call").
 */
export async function recordKeyIdOrder(db: MutationCtx["db"], keyIdOrder: KeyIdOrder): Promise<void> {
  await ensureRootSalt(db);
  const settings = await db.query("encryptionSettings").order("asc").first();
  if (settings) await db.patch("encryptionSettings", settings._id, { keyIdOrder });
}

/**
 * Records that no value in the original format is left (the upgrade job,
 * after a verification that found none): from now on every decryption
 * refuses that format. Creates the settings row (and root salt) if needed.
 */
export async function retireLegacyFormat(db: MutationCtx["db"], at: number): Promise<void> {
  await ensureRootSalt(db);
  const settings = await db.query("encryptionSettings").order("asc").first();
  if (settings && settings.legacyRetiredAt === undefined) await db.patch("encryptionSettings", settings._id, { legacyRetiredAt: at });
}

/** Newest rows per registered ciphertext field that ensureRootSalt checks for format v2 before creating a root salt. */
export const ROOT_SALT_SAMPLE_ROWS = 64;

/**
 * Why this deployment must already have a root salt although its
 * encryptionSettings row is missing (a partial restore): a re-encryption
 * job recorded key ids, or one of the newest rows of a registered
 * ciphertext field holds format v2 or sits at a secret version above 0.
 * Only format v2 was ever written at a version above 0 (docs/encryption.md,
 * "Secret versions"), so such a row proves a root salt existed even when it
 * holds no ciphertext any more (a removed AI key's tombstone) and the v2
 * values sit in older rows. Null when none of this is true. Reads at most
 * 1 + 64 rows per such field.
 */
export async function rootSaltEvidence(db: QueryCtx["db"]): Promise<string | null> {
  if ((await db.query("reencryptionJobs").first()) !== null) return "a re-encryption job recorded this deployment's key ids";
  for (const { table, field, formats, versionField } of REGISTRY) {
    if (!formats.includes("v2")) continue;
    const rows = (await db.query(table).order("desc").take(ROOT_SALT_SAMPLE_ROWS)) as Record<string, unknown>[];
    const v2 = rows.some((row) => {
      const value = row[field];
      return typeof value === "string" && describeCiphertext(value).format === "v2";
    });
    if (v2) return `${table}.${field} holds format v2 ciphertext`;
    const versioned = versionField !== null && rows.some((row) => {
      const version = row[versionField];
      return typeof version === "number" && version > 0;
    });
    if (versioned) return `${table}.${versionField} is above 0, which only format v2 writes`;
  }
  return null;
}

/** How to restore a missing root salt, for messages. */
export const RESTORE_ROOT_SALT_HINT =
  "restore the encryptionSettings row (its rootSalt) from your latest backup: npx convex import --table encryptionSettings --append <file> (docs/key-rotation.md, \"Root salt\")";

/**
 * The root salt, created (32 random bytes) if the deployment has none yet
 * and nothing shows it had one: a new salt while format v2 data exists
 * would make every existing value unreadable, so then every write is
 * refused (ENCRYPTION_UNAVAILABLE, reason ROOT_SALT_MISSING) until the row
 * is restored. Two mutations creating it at once both read the empty
 * table, so Convex's optimistic concurrency retries one of them, which
 * then finds the other's row.
 */
export async function ensureRootSalt(db: MutationCtx["db"]): Promise<string> {
  const existing = await readRootSalt(db);
  if (existing !== null) return existing;
  const evidence = await rootSaltEvidence(db);
  if (evidence !== null) {
    throw appError(
      "ENCRYPTION_UNAVAILABLE",
      `Encryption is not usable on this deployment: its root salt is missing although ${evidence} (ROOT_SALT_MISSING): ${RESTORE_ROOT_SALT_HINT}`,
      { reason: "ROOT_SALT_MISSING" },
    );
  }
  const rootSalt = randomToken(ROOT_SALT_BYTES);
  await db.insert("encryptionSettings", { rootSalt, createdAt: Date.now() });
  return rootSalt;
}

/** The keyring from the environment, or ENCRYPTION_UNAVAILABLE naming the variable. Derives nothing, logs nothing. */
function keyringFromEnv(rootSalt: string | null): Keyring {
  try {
    return Keyring.fromEnv({ MASTER_ENCRYPTION_KEY: env.MASTER_ENCRYPTION_KEY, OLD_MASTER_KEY: env.OLD_MASTER_KEY }, rootSalt);
  } catch (error) {
    return toAppError(error);
  }
}

/** How to replace a weak master key, for messages. */
export const GENERATE_KEY_HINT = 'npx convex env set MASTER_ENCRYPTION_KEY "$(openssl rand -hex 32)"';

/**
 * The deployment's keyring with `rootSalt` (from readRootSalt, loaded by the
 * same query that loads the ciphertext) and, when given, the key id hints a
 * rotation job recorded (readEncryptionSettings). Derives nothing. A missing or short
 * master key, or a bad root salt, is ENCRYPTION_UNAVAILABLE. A current key
 * that looks non-random (lib/keyStrength.ts) is accepted here (data may
 * depend on it) and reported with one console.warn per load: one per call.
 */
export function loadKeyring(rootSalt: string | null, keyIdOrder: KeyIdOrder | null = null): Keyring {
  const keyring = keyringFromEnv(rootSalt);
  if (keyIdOrder) keyring.useKeyIdHints(keyIdOrder);
  const weak = keyring.current.weakReasons();
  if (weak.length > 0) {
    // Operators read `npx convex logs`: the reasons only, never the key.
    console.warn(
      `MASTER_ENCRYPTION_KEY looks non-random (${weak.join(", ")}): rotate to a generated key (docs/key-rotation.md)`,
    );
  }
  return keyring;
}

/**
 * Whether no secret can be encrypted under any key yet: no root salt (every
 * format v2 write creates it) and no connection or AI key row (rows left by
 * older versions hold v1, legacy or plaintext secrets without one). Three
 * indexed reads of at most one document each.
 */
async function nothingEncryptedYet(db: QueryCtx["db"], rootSalt: string | null): Promise<boolean> {
  if (rootSalt !== null) return false;
  return (await db.query("connections").first()) === null && (await db.query("aiKeys").first()) === null;
}

/**
 * The keyring for a mutation that encrypts: checks the master key first,
 * then reads or creates the root salt. A current key that looks non-random
 * is refused (ENCRYPTION_UNAVAILABLE) while nothing is encrypted yet, so no
 * data ever comes to depend on it; once data exists it is accepted and
 * flagged (loadKeyring).
 */
export async function loadKeyringForWrite(ctx: Pick<MutationCtx, "db">): Promise<Keyring> {
  const unsalted = keyringFromEnv(null);
  const rootSalt = await readRootSalt(ctx.db);
  const weak = unsalted.current.weakReasons();
  if (weak.length > 0 && (await nothingEncryptedYet(ctx.db, rootSalt))) {
    throw weakMasterKeyError(weak, "nothing is encrypted under it yet");
  }
  return loadKeyring(rootSalt ?? (await ensureRootSalt(ctx.db)));
}

/** ENCRYPTION_UNAVAILABLE for a non-random MASTER_ENCRYPTION_KEY (reason MASTER_KEY_WEAK), with the fix. */
export function weakMasterKeyError(reasons: readonly string[], why: string) {
  return appError(
    "ENCRYPTION_UNAVAILABLE",
    `MASTER_ENCRYPTION_KEY looks non-random (MASTER_KEY_WEAK: ${reasons.join(", ")}) and ${why}: ` +
      `replace it with a generated key: ${GENERATE_KEY_HINT}`,
    { reason: "MASTER_KEY_WEAK", variable: "MASTER_ENCRYPTION_KEY" },
  );
}

/** The version a row's secret gets when it is replaced (rows written before versions existed are at 0). */
export function nextSecretVersion(current: number | undefined): number {
  return (current ?? 0) + 1;
}




/** Ciphertext of a pending OAuth flow's PKCE code verifier. */
export function encryptCodeVerifier(
  keyring: Keyring,
  projectId: Id<"projects">,
  stateId: Id<"oauthStates">,
  codeVerifier: string,
): Promise<string> {
  return mapEncryptionErrors(() => encryptSecret(keyring, codeVerifier, codeVerifierSecretContext(projectId, stateId)));
}

/** A pending OAuth flow's PKCE code verifier from its ciphertext. */
export async function decryptCodeVerifier(
  keyring: Keyring,
  projectId: Id<"projects">,
  stateId: Id<"oauthStates">,
  encryptedCodeVerifier: string,
): Promise<string> {
  const context = codeVerifierSecretContext(projectId, stateId);
  const options = decryptPolicy(registered("oauthStates", "encryptedCodeVerifier"), context, { legacyRetired: true });
  return (await mapCryptoErrors(() => decryptSecret(keyring, encryptedCodeVerifier, context, options))).plaintext;
}


/** Ciphertext of the authorization code a flow's callback received, kept until the user finishes the flow. */
export function encryptAuthorizationCode(
  keyring: Keyring,
  projectId: Id<"projects">,
  stateId: Id<"oauthStates">,
  code: string,
): Promise<string> {
  return mapEncryptionErrors(() => encryptSecret(keyring, code, authorizationCodeSecretContext(projectId, stateId)));
}

/** A flow's authorization code from its ciphertext. */
export async function decryptAuthorizationCode(
  keyring: Keyring,
  projectId: Id<"projects">,
  stateId: Id<"oauthStates">,
  encryptedCode: string,
): Promise<string> {
  const context = authorizationCodeSecretContext(projectId, stateId);
  const options = decryptPolicy(registered("oauthStates", "encryptedCode"), context, { legacyRetired: true });
  return (await mapCryptoErrors(() => decryptSecret(keyring, encryptedCode, context, options))).plaintext;
}

/** Ciphertext of a connection's credentials under the current master key, bound to the row's `secretVersion`. */
export function encryptCredentials(
  keyring: Keyring,
  projectId: Id<"projects">,
  connectionId: Id<"connections">,
  credentials: Credentials,
  secretVersion: number,
): Promise<string> {
  const context = connectionSecretContext(projectId, connectionId, secretVersion);
  return mapEncryptionErrors(() => encryptSecret(keyring, JSON.stringify(credentials), context));
}

/**
 * The credentials a connection's ciphertext holds (any configured key; v2, v1,
 * or the legacy format unless `policy` retired it); `secret.format` tells
 * the caller whether it read the legacy format, to audit it as such.
 */
export async function decryptCredentials(
  keyring: Keyring,
  projectId: Id<"projects">,
  connectionId: Id<"connections">,
  encryptedCredentials: string,
  secretVersion: number | undefined,
  policy: LegacyPolicy,
): Promise<{ credentials: Credentials; secret: DecryptedSecret }> {
  const context = connectionSecretContext(projectId, connectionId, secretVersion);
  const options = decryptPolicy(registered("connections", "encryptedCredentials"), context, policy);
  const secret = await mapCryptoErrors(() => decryptSecret(keyring, encryptedCredentials, context, options));
  return { credentials: parseCredentials(secret.plaintext), secret };
}

/** Parses decrypted credentials JSON, refusing anything but an object of strings. */
export function parseCredentials(plaintext: string): Credentials {
  let parsed: unknown = null;
  try {
    parsed = JSON.parse(plaintext);
  } catch {
    // Reported below; the plaintext itself must never reach an error message.
  }
  const isObjectOfStrings =
    typeof parsed === "object" &&
    parsed !== null &&
    !Array.isArray(parsed) &&
    Object.values(parsed).every((value) => typeof value === "string");
  if (!isObjectOfStrings) throw appError("DECRYPTION_FAILED", "decrypted credentials are not an object of strings");
  return parsed as Credentials;
}

/** Ciphertext of a user's AI provider key under the current master key, bound to the row's `secretVersion`. */
export function encryptAiKey(keyring: Keyring, userId: Id<"users">, apiKey: string, secretVersion: number): Promise<string> {
  return mapEncryptionErrors(() => encryptSecret(keyring, apiKey, aiKeySecretContext(userId, secretVersion)));
}

/**
 * A user's AI provider key from its ciphertext: an aiKeys row's, or the
 * original Dashtray's users.aiApiKey (legacy format, same salt; no version).
 * The legacy format is refused once `policy` retired it.
 */
export function decryptAiKey(
  keyring: Keyring,
  userId: Id<"users">,
  encryptedKey: string,
  secretVersion: number | undefined,
  policy: LegacyPolicy,
): Promise<DecryptedSecret> {
  const context = aiKeySecretContext(userId, secretVersion);
  const options = decryptPolicy(registered("aiKeys", "encryptedKey"), context, policy);
  return mapCryptoErrors(() => decryptSecret(keyring, encryptedKey, context, options));
}
