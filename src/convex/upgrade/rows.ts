/**
 * Row-level work of the upgrade job (upgrade.ts): what a row written by the
 * original Dashtray (or an older version of this one) still lacks, read
 * from the row alone, and bringing one row to the current shape:
 * - users: the AI key the original kept on the users row (aiApiKey, its own
 *   format, salt = user id) moves to aiKeys in format v2, and aiApiKey and
 *   aiProvider are removed in the same transaction;
 * - connections: name and masked hints filled in, legacy ciphertext (and
 *   any older value, once decrypted for the hints) re-encrypted in v2,
 *   plaintext credentials encrypted and removed;
 * - aiKeys: legacy ciphertext re-encrypted, plaintext encrypted, hints filled;
 * - apiKeys: keyHashAlgorithm recorded, a plaintext key hashed, keyPrefix
 *   moved to prefix.
 * A row that cannot be upgraded is reported and left byte for byte as it was.
 */
import type { Doc, Id } from "../_generated/dataModel";
import type { MutationCtx, QueryCtx } from "../_generated/server";
import { findAiKeyRow, holdsKey } from "../aiKeys";
import { API_KEY_PREFIX, DISPLAY_PREFIX_LENGTH } from "../apiKeys";
import { credentialHints } from "../providers/integrations/registry";
import { decryptSecret, describeCiphertext } from "../lib/cipher";
import { isCryptoError } from "../lib/errors";
import { isSha256Hex, sha256Hex } from "../lib/hash";
import type { Keyring } from "../lib/keyring";
import { maskSecret } from "../lib/mask";
import { readRowsAfter, reencrypt, type RotationRow } from "../rotation/rows";
import {
  aiKeySecretContext,
  connectionSecretContext,
  nextSecretVersion,
  parseCredentials,
  type LegacyPolicy,
} from "../secrets";
import type { Credentials, RotationCursor, UpgradeRemaining, UpgradeTable } from "../validators";
import { connectionNameOf, UNKNOWN_HINT } from "./defaults";

/** A row of one of the tables the upgrade visits. */
export type UpgradeRow = RotationRow | { table: "users"; doc: Doc<"users"> };

/** What a row still lacks, from the row alone (no crypto). */
export interface PendingWork {
  aiKeyOnUser: boolean;
  missingName: boolean;
  missingHints: boolean;
  missingPrefix: boolean;
  missingHashAlgorithm: boolean;
  legacyCiphertext: boolean;
  plaintext: boolean;
}

/** What processing one row did. */
export type UpgradeOutcome = "upgraded" | "alreadyCurrent" | { failed: string };

type Db = QueryCtx["db"];

function formatOf(value: string | undefined): string | null {
  return value === undefined ? null : describeCiphertext(value).format;
}

/** What `row` still lacks. */
export function pendingWork(row: UpgradeRow): PendingWork {
  const work: PendingWork = {
    aiKeyOnUser: false,
    missingName: false,
    missingHints: false,
    missingPrefix: false,
    missingHashAlgorithm: false,
    legacyCiphertext: false,
    plaintext: false,
  };
  switch (row.table) {
    case "users": {
      const { aiApiKey, aiProvider } = row.doc;
      work.aiKeyOnUser = aiApiKey !== undefined || aiProvider !== undefined;
      work.legacyCiphertext = formatOf(aiApiKey) === "legacy";
      work.plaintext = formatOf(aiApiKey) === "plaintext";
      break;
    }
    case "connections": {
      const { name, credentialHints: hints, encryptedCredentials, credentials } = row.doc;
      const holdsSecret = encryptedCredentials !== undefined || credentials !== undefined;
      work.missingName = name === undefined;
      work.missingHints = hints === undefined || (holdsSecret && Object.keys(hints).length === 0);
      work.legacyCiphertext = formatOf(encryptedCredentials) === "legacy";
      work.plaintext = credentials !== undefined;
      break;
    }
    case "aiKeys": {
      const { encryptedKey, apiKey, hint } = row.doc;
      work.missingHints = holdsKey(row.doc) && hint === "";
      work.legacyCiphertext = formatOf(encryptedKey) === "legacy";
      work.plaintext = apiKey !== undefined;
      break;
    }
    case "apiKeys": {
      const { prefix, keyPrefix, keyHashAlgorithm, keyHash } = row.doc;
      work.missingPrefix = prefix === undefined || keyPrefix !== undefined;
      work.missingHashAlgorithm = keyHashAlgorithm === undefined;
      work.plaintext = keyHashAlgorithm === undefined && !isSha256Hex(keyHash);
      break;
    }
  }
  return work;
}

/** Whether the row needs any work. */
export function hasWork(work: PendingWork): boolean {
  return Object.values(work).some(Boolean);
}

/** Counts with every field at zero. */
export function emptyRemaining(): UpgradeRemaining {
  return {
    rows: 0,
    aiKeysOnUsers: 0,
    connectionsWithoutName: 0,
    missingHints: 0,
    apiKeysWithoutPrefix: 0,
    apiKeysWithoutHashAlgorithm: 0,
    legacyCiphertext: 0,
    plaintextSecrets: 0,
  };
}

/** `remaining` with one more row and what it still lacks. */
export function countRemaining(remaining: UpgradeRemaining, work: PendingWork): UpgradeRemaining {
  const add = (flag: boolean) => (flag ? 1 : 0);
  return {
    rows: remaining.rows + 1,
    aiKeysOnUsers: remaining.aiKeysOnUsers + add(work.aiKeyOnUser),
    connectionsWithoutName: remaining.connectionsWithoutName + add(work.missingName),
    missingHints: remaining.missingHints + add(work.missingHints),
    apiKeysWithoutPrefix: remaining.apiKeysWithoutPrefix + add(work.missingPrefix),
    apiKeysWithoutHashAlgorithm: remaining.apiKeysWithoutHashAlgorithm + add(work.missingHashAlgorithm),
    legacyCiphertext: remaining.legacyCiphertext + add(work.legacyCiphertext),
    plaintextSecrets: remaining.plaintextSecrets + add(work.plaintext),
  };
}

/**
 * Up to `limit` rows of `table` strictly after `after`: connections, aiKeys
 * and apiKeys in the rotation job's order (by project or user, so rows
 * sharing a salt share its derivations), users in creation order.
 */
export async function readUpgradeRows(
  db: Db,
  table: UpgradeTable,
  after: RotationCursor | undefined,
  limit: number,
): Promise<UpgradeRow[]> {
  if (table !== "users") return readRowsAfter(db, table, after, limit);
  const users = await db
    .query("users")
    .withIndex("by_creation_time", (q) => (after === undefined ? q : q.gt("_creationTime", after.creationTime)))
    .take(limit);
  return users.map((doc) => ({ table, doc }));
}

/** The index position of a row, for the job's cursor (users have no group). */
export function upgradePositionOf(row: UpgradeRow): RotationCursor {
  if (row.table === "users") return { group: "", creationTime: row.doc._creationTime };
  return { group: row.table === "aiKeys" ? row.doc.userId : row.doc.projectId, creationTime: row.doc._creationTime };
}

/** The stored value this row's upgrade must decrypt, and its salt; null when it decrypts nothing. */
function valueToDecrypt(row: UpgradeRow, work: PendingWork): { value: string; salt: string } | null {
  switch (row.table) {
    case "users":
      return row.doc.aiApiKey === undefined ? null : { value: row.doc.aiApiKey, salt: row.doc._id };
    case "connections": {
      const { encryptedCredentials } = row.doc;
      const needed = work.legacyCiphertext || work.missingHints;
      return needed && encryptedCredentials !== undefined && row.doc.credentials === undefined
        ? { value: encryptedCredentials, salt: row.doc.projectId }
        : null;
    }
    case "aiKeys": {
      const { encryptedKey } = row.doc;
      const needed = work.legacyCiphertext || work.missingHints;
      return needed && encryptedKey !== undefined && row.doc.apiKey === undefined ? { value: encryptedKey, salt: row.doc.userId } : null;
    }
    case "apiKeys":
      return null;
  }
}

/**
 * How many PBKDF2 runs upgrading this row may still cost with `keyring` (an
 * upper bound): legacy values one per (salt, configured key) not yet
 * derived, v1 values the same, v2 values the roots of the previous keys not
 * yet derived. The current key's root is not counted: a migrate batch
 * derives it before its first row.
 */
export function derivationsNeeded(row: UpgradeRow, work: PendingWork, keyring: Keyring): number {
  const target = valueToDecrypt(row, work);
  if (!target) return 0;
  const format = formatOf(target.value);
  const missing = (kind: "root" | "v1" | "legacy") =>
    keyring.all.filter((key) => !key.hasDerived(kind, kind === "root" ? "" : target.salt)).length;
  if (format === "legacy") return missing("legacy");
  if (format === "v1") return missing("v1");
  if (format === "v2") return missing("root");
  return 0;
}

/** Decrypts `value` for `context`; a crypto failure becomes the row's failure code. */
async function open(
  keyring: Keyring,
  value: string,
  context: Parameters<typeof decryptSecret>[2],
  policy: LegacyPolicy,
  allowPlaintext = false,
): Promise<{ plaintext: string; needsReencryption: boolean } | { failed: string }> {
  try {
    const options = { refuseLegacy: policy.legacyRetired, requireVersionBinding: context.version > 0, allowPlaintext };
    const secret = await decryptSecret(keyring, value, context, options);
    return { plaintext: secret.plaintext, needsReencryption: secret.needsReencryption };
  } catch (error) {
    if (isCryptoError(error)) return { failed: error.code };
    throw error;
  }
}

function parsedOrNull(plaintext: string): Credentials | null {
  try {
    return parseCredentials(plaintext);
  } catch {
    return null;
  }
}

async function upgradeConnection(
  ctx: MutationCtx,
  doc: Doc<"connections">,
  work: PendingWork,
  keyring: Keyring,
  policy: LegacyPolicy,
): Promise<UpgradeOutcome> {
  // Which of the two is right is not ours to guess, and neither may be dropped.
  if (doc.credentials !== undefined && doc.encryptedCredentials !== undefined) return { failed: "CONFLICTING_FIELDS" };
  const patch: Partial<Doc<"connections">> = {};
  if (work.missingName) patch.name = connectionNameOf(doc);
  const context = connectionSecretContext(doc.projectId, doc._id, doc.secretVersion);
  let plaintext: string | null = null;
  let reencryptIt = false;
  if (doc.credentials !== undefined) {
    plaintext = JSON.stringify(doc.credentials);
    reencryptIt = true;
  } else if (doc.encryptedCredentials !== undefined && (work.legacyCiphertext || work.missingHints)) {
    const opened = await open(keyring, doc.encryptedCredentials, context, policy);
    if ("failed" in opened) return opened;
    plaintext = opened.plaintext;
    reencryptIt = opened.needsReencryption;
  }
  if (plaintext !== null) {
    // The original accepted any JSON; the current code reads an object of strings only.
    const credentials = parsedOrNull(plaintext);
    if (!credentials) return { failed: "INVALID_CREDENTIALS" };
    if (work.missingHints) patch.credentialHints = credentialHints(doc.service, credentials);
    if (reencryptIt) {
      // Same plaintext, same secret version: only the format and key change.
      patch.encryptedCredentials = await reencrypt(keyring, plaintext, context);
      // Unset in the same write: never plaintext and ciphertext side by side.
      if (doc.credentials !== undefined) patch.credentials = undefined;
    }
  } else if (doc.credentialHints === undefined) {
    // No secret to compute hints from: an empty set, as for a connection without credentials.
    patch.credentialHints = {};
  }
  await ctx.db.patch("connections", doc._id, patch);
  return "upgraded";
}

async function upgradeAiKey(
  ctx: MutationCtx,
  doc: Doc<"aiKeys">,
  work: PendingWork,
  keyring: Keyring,
  policy: LegacyPolicy,
): Promise<UpgradeOutcome> {
  if (doc.apiKey !== undefined && doc.encryptedKey !== undefined) return { failed: "CONFLICTING_FIELDS" };
  const context = aiKeySecretContext(doc.userId, doc.secretVersion);
  let plaintext: string;
  let reencryptIt: boolean;
  if (doc.apiKey !== undefined) {
    plaintext = doc.apiKey;
    reencryptIt = true;
  } else if (doc.encryptedKey !== undefined) {
    const opened = await open(keyring, doc.encryptedKey, context, policy);
    if ("failed" in opened) return opened;
    ({ plaintext, needsReencryption: reencryptIt } = opened);
  } else {
    return "alreadyCurrent";
  }
  await ctx.db.patch("aiKeys", doc._id, {
    ...(reencryptIt ? { encryptedKey: await reencrypt(keyring, plaintext, context), apiKey: undefined } : {}),
    ...(work.missingHints ? { hint: maskSecret(plaintext) } : {}),
  });
  return "upgraded";
}

/**
 * Moves the original's AI key from the users row to aiKeys, encrypted in v2
 * with the next secret version of the user's aiKeys row (a removed key's
 * tombstone included, so the version never restarts), and removes aiApiKey
 * and aiProvider in the same transaction.
 */
async function upgradeUser(ctx: MutationCtx, doc: Doc<"users">, keyring: Keyring, policy: LegacyPolicy): Promise<UpgradeOutcome> {
  const userId: Id<"users"> = doc._id;
  if (doc.aiApiKey === undefined) {
    // A provider without a key holds no secret.
    await ctx.db.patch("users", userId, { aiProvider: undefined });
    return "upgraded";
  }
  if (doc.aiProvider === undefined) return { failed: "MISSING_AI_PROVIDER" };
  const existing = await findAiKeyRow(ctx.db, userId);
  // The user set a key with the current code: which one is right is not ours to guess.
  if (existing && holdsKey(existing)) return { failed: "CONFLICTING_FIELDS" };
  // The original's value has no version: it is read as version 0 (bound by v2 only).
  const opened = await open(keyring, doc.aiApiKey, aiKeySecretContext(userId, 0), policy, true);
  if ("failed" in opened) return opened;
  const secretVersion = nextSecretVersion(existing?.secretVersion);
  const encryptedKey = await reencrypt(keyring, opened.plaintext, aiKeySecretContext(userId, secretVersion));
  const at = doc.updatedAt ?? doc.createdAt;
  const fields = { provider: doc.aiProvider, encryptedKey, secretVersion, hint: maskSecret(opened.plaintext), updatedAt: at };
  if (existing) await ctx.db.patch("aiKeys", existing._id, { ...fields, apiKey: undefined, removedAt: undefined });
  else await ctx.db.insert("aiKeys", { userId, createdAt: at, ...fields });
  await ctx.db.patch("users", userId, { aiApiKey: undefined, aiProvider: undefined });
  return "upgraded";
}

/** The display prefix of a plaintext key: as apiKeys.create keeps it for current keys, the original's 8 characters otherwise. */
function displayPrefixOf(apiKey: string): string {
  return apiKey.slice(0, apiKey.startsWith(API_KEY_PREFIX) ? DISPLAY_PREFIX_LENGTH : 8);
}

async function upgradeApiKey(ctx: MutationCtx, doc: Doc<"apiKeys">): Promise<UpgradeOutcome> {
  const patch: Partial<Doc<"apiKeys">> = {};
  let plaintextPrefix: string | undefined;
  if (doc.keyHashAlgorithm === undefined) {
    // Hashing an empty value would make the empty string a valid key.
    if (doc.keyHash === "") return { failed: "EMPTY_API_KEY" };
    // Every version that hashed stored lowercase SHA-256 hex; anything else is a plaintext key, hashed now.
    if (!isSha256Hex(doc.keyHash)) {
      patch.keyHash = await sha256Hex(doc.keyHash);
      plaintextPrefix = displayPrefixOf(doc.keyHash);
    }
    patch.keyHashAlgorithm = "sha256";
  }
  if (doc.prefix === undefined) patch.prefix = doc.keyPrefix ?? plaintextPrefix ?? UNKNOWN_HINT;
  if (doc.keyPrefix !== undefined) patch.keyPrefix = undefined;
  await ctx.db.patch("apiKeys", doc._id, patch);
  return "upgraded";
}

/**
 * Brings one row to the current shape (see the file comment). Failures of
 * this row (a value no configured key opens, conflicting fields, ...) are
 * returned and nothing of the row is written; any other error propagates,
 * so the batch rolls back as a whole.
 */
export async function upgradeRow(
  ctx: MutationCtx,
  row: UpgradeRow,
  keyring: Keyring,
  policy: LegacyPolicy,
): Promise<UpgradeOutcome> {
  const work = pendingWork(row);
  if (!hasWork(work)) return "alreadyCurrent";
  switch (row.table) {
    case "users":
      return upgradeUser(ctx, row.doc, keyring, policy);
    case "connections":
      return upgradeConnection(ctx, row.doc, work, keyring, policy);
    case "aiKeys":
      return upgradeAiKey(ctx, row.doc, work, keyring, policy);
    case "apiKeys":
      return upgradeApiKey(ctx, row.doc);
  }
}
