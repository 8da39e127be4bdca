/**
 * Row-level work of the master-key rotation job (keyRotation.ts), for each
 * table that holds a secret: reading rows in index order after a cursor,
 * classifying a stored secret from its header alone (no key, no crypto:
 * against the key ids the job computed when it started), and re-encrypting
 * or migrating one row to format v2 under the current key.
 *
 * Rows are read in the order of the index whose first field is the salt
 * (connections by projectId, aiKeys by userId), so rows sharing a v1 or
 * legacy key (one PBKDF2 per salt and key) sit next to each other and a
 * batch derives each of those once.
 */
import type { Doc, Id } from "../_generated/dataModel";
import type { MutationCtx, QueryCtx } from "../_generated/server";
import { decryptSecret, describeCiphertext, encryptSecret, type SecretContext } from "../lib/cipher";
import { CryptoError, isCryptoError } from "../lib/errors";
import { isSha256Hex, sha256Hex } from "../lib/hash";
import type { Keyring, MasterKey } from "../lib/keyring";
import { maskSecret } from "../lib/mask";
import { credentialHints } from "../providers/integrations/registry";
import { aiKeySecretContext, connectionSecretContext, parseCredentials, readEncryptionSettings } from "../secrets";
import { connectionNameOf } from "../upgrade/defaults";
import type { Credentials, RotationCursor, RotationTable, SecretShapeCounts } from "../validators";

/** A row of one of the tables the job visits. */
export type RotationRow =
  | { table: "connections"; doc: Doc<"connections"> }
  | { table: "aiKeys"; doc: Doc<"aiKeys"> }
  | { table: "apiKeys"; doc: Doc<"apiKeys"> };

/**
 * The master keys a job works with, as ids computed when it started: index
 * 0 is the current key, then OLD_MASTER_KEY's keys in order (the same
 * order as `keyring.all`, which the indexes hint at).
 */
export interface JobKeyIds {
  /** v2 ids (HKDF from each key's root). */
  v2: readonly string[];
  /** v1 ids (PBKDF2 of each key). */
  v1: readonly string[];
}

/** What a row's stored secret is, read from its shape alone. */
export type SecretShape =
  | { kind: "empty" }
  /** v2 under the current key (or hashed, for API keys): nothing to do. */
  | { kind: "current" }
  /** v2 under a configured previous key (`keyIndex` in JobKeyIds). */
  | { kind: "previousKey"; keyId: string; keyIndex: number }
  /** v2 or v1 under a key the job does not know. */
  | { kind: "unknownKey"; keyId: string; format: "v1" | "v2" }
  /** v1 under a configured key, current or previous: migrated to v2. */
  | { kind: "olderFormat"; keyId: string; keyIndex: number }
  | { kind: "legacyFormat" }
  | { kind: "plaintext" }
  | { kind: "invalid"; code: string };

/** What processing one row did (or, in a dry run, would do). */
export type RowOutcome = "alreadyCurrent" | "reEncrypted" | "migrated" | { failed: string };

type Db = QueryCtx["db"];

/**
 * Up to `limit` rows in index order (group, _creationTime) strictly after
 * `after`: the rest of `after`'s group, then the groups after it. The two
 * reads are given per table, since each table has its own index.
 */
async function readGroupedAfter<T>(
  after: RotationCursor | undefined,
  limit: number,
  restOfGroup: (after: RotationCursor, n: number) => Promise<T[]>,
  laterGroups: (afterGroup: string | undefined, n: number) => Promise<T[]>,
): Promise<T[]> {
  const rest = after === undefined ? [] : await restOfGroup(after, limit);
  if (rest.length >= limit) return rest;
  return [...rest, ...(await laterGroups(after?.group, limit - rest.length))];
}

// The cursor keeps the group (salt) id as a string; it is an id of the table the index starts with.
function readConnections(db: Db, after: RotationCursor | undefined, limit: number) {
  return readGroupedAfter(
    after,
    limit,
    (from, n) =>
      db
        .query("connections")
        .withIndex("by_projectId", (q) => q.eq("projectId", from.group as Id<"projects">).gt("_creationTime", from.creationTime))
        .take(n),
    (group, n) =>
      db
        .query("connections")
        .withIndex("by_projectId", (q) => (group === undefined ? q : q.gt("projectId", group as Id<"projects">)))
        .take(n),
  );
}

function readAiKeys(db: Db, after: RotationCursor | undefined, limit: number) {
  return readGroupedAfter(
    after,
    limit,
    (from, n) =>
      db
        .query("aiKeys")
        .withIndex("by_userId", (q) => q.eq("userId", from.group as Id<"users">).gt("_creationTime", from.creationTime))
        .take(n),
    (group, n) =>
      db
        .query("aiKeys")
        .withIndex("by_userId", (q) => (group === undefined ? q : q.gt("userId", group as Id<"users">)))
        .take(n),
  );
}

function readApiKeys(db: Db, after: RotationCursor | undefined, limit: number) {
  return readGroupedAfter(
    after,
    limit,
    (from, n) =>
      db
        .query("apiKeys")
        .withIndex("by_projectId", (q) => q.eq("projectId", from.group as Id<"projects">).gt("_creationTime", from.creationTime))
        .take(n),
    (group, n) =>
      db
        .query("apiKeys")
        .withIndex("by_projectId", (q) => (group === undefined ? q : q.gt("projectId", group as Id<"projects">)))
        .take(n),
  );
}

/**
 * Up to `limit` rows of `table` strictly after `after` in index order
 * (group id, _creationTime), or from the start. Two index range reads, so a
 * batch can stop at any row and the next one resumes exactly there.
 */
export async function readRowsAfter(
  db: Db,
  table: RotationTable,
  after: RotationCursor | undefined,
  limit: number,
): Promise<RotationRow[]> {
  switch (table) {
    case "connections":
      return (await readConnections(db, after, limit)).map((doc) => ({ table, doc }));
    case "aiKeys":
      return (await readAiKeys(db, after, limit)).map((doc) => ({ table, doc }));
    case "apiKeys":
      return (await readApiKeys(db, after, limit)).map((doc) => ({ table, doc }));
  }
}

/** The index position of a row, for the job's cursor. */
export function positionOf(row: RotationRow): RotationCursor {
  const group = row.table === "aiKeys" ? row.doc.userId : row.doc.projectId;
  return { group, creationTime: row.doc._creationTime };
}

function shapeOfCiphertext(value: string, keys: JobKeyIds): SecretShape {
  const described = describeCiphertext(value);
  if (described.format === "legacy") return { kind: "legacyFormat" };
  if (described.format === "plaintext") return { kind: "invalid", code: "NOT_CIPHERTEXT" };
  // Another version, a malformed or oversized value: unreadable under any key, so a failure, never "current".
  if (described.format === "invalid") return { kind: "invalid", code: described.code };
  const { keyId } = described;
  if (described.format === "v1") {
    const keyIndex = keys.v1.indexOf(keyId);
    // A v1 value is never up to date, even under the current key: it is migrated to v2.
    return keyIndex >= 0 ? { kind: "olderFormat", keyId, keyIndex } : { kind: "unknownKey", keyId, format: "v1" };
  }
  const keyIndex = keys.v2.indexOf(keyId);
  if (keyIndex === 0) return { kind: "current" };
  return keyIndex > 0 ? { kind: "previousKey", keyId, keyIndex } : { kind: "unknownKey", keyId, format: "v2" };
}

function shapeOfEncryptedField(encrypted: string | undefined, hasPlaintext: boolean, keys: JobKeyIds): SecretShape {
  // Both present: which one is right is not ours to guess, and neither may be dropped.
  if (encrypted !== undefined && hasPlaintext) return { kind: "invalid", code: "CONFLICTING_FIELDS" };
  if (hasPlaintext) return { kind: "plaintext" };
  if (encrypted === undefined) return { kind: "empty" };
  return shapeOfCiphertext(encrypted, keys);
}

/** Classifies a row's secret by its header against the job's key ids: no key derivation, no crypto. */
export function shapeOf(row: RotationRow, keys: JobKeyIds): SecretShape {
  switch (row.table) {
    case "connections":
      return shapeOfEncryptedField(row.doc.encryptedCredentials, row.doc.credentials !== undefined, keys);
    case "aiKeys":
      return shapeOfEncryptedField(row.doc.encryptedKey, row.doc.apiKey !== undefined, keys);
    case "apiKeys":
      if (row.doc.keyHashAlgorithm === "sha256") return { kind: "current" };
      // Hashing an empty value would make the empty string a valid key.
      if (row.doc.keyHash === "") return { kind: "invalid", code: "EMPTY_API_KEY" };
      // Rows from before keyHashAlgorithm: every version that hashed stored SHA-256 hex (the upgrade job records it).
      return isSha256Hex(row.doc.keyHash) ? { kind: "current" } : { kind: "plaintext" };
  }
}

/** Counts with every shape at zero. */
export function emptyShapeCounts(): SecretShapeCounts {
  return { rows: 0, upToDate: 0, previousKey: 0, unknownKey: 0, legacyFormat: 0, plaintext: 0, invalid: 0 };
}

/** `counts` with one more row of `shape` (v1 values count as legacyFormat: an older format to migrate). */
export function countShape(counts: SecretShapeCounts, shape: SecretShape): SecretShapeCounts {
  const field =
    shape.kind === "empty" || shape.kind === "current"
      ? "upToDate"
      : shape.kind === "olderFormat"
        ? "legacyFormat"
        : shape.kind;
  return { ...counts, rows: counts.rows + 1, [field]: counts[field] + 1 };
}

/** A row whose secret is encrypted (API keys are hashed instead). */
type EncryptedRow = Exclude<RotationRow, { table: "apiKeys" }>;

/** The row's salt, purpose and version (re-encryption keeps the version: the secret is the same). */
function secretContextOf(row: EncryptedRow): SecretContext {
  return row.table === "connections"
    ? connectionSecretContext(row.doc.projectId, row.doc._id, row.doc.secretVersion)
    : aiKeySecretContext(row.doc.userId, row.doc.secretVersion);
}

/** The row's ciphertext field and its legacy plaintext field (credentials as the JSON that gets encrypted). */
function storedSecret(row: EncryptedRow): { encrypted: string | undefined; plaintext: string | undefined } {
  if (row.table === "aiKeys") return { encrypted: row.doc.encryptedKey, plaintext: row.doc.apiKey };
  const { credentials, encryptedCredentials } = row.doc;
  return { encrypted: encryptedCredentials, plaintext: credentials && JSON.stringify(credentials) };
}

/**
 * How many PBKDF2 runs processing this row may still cost with `keyring`
 * (an upper bound: legacy values stop at the first key that opens them).
 * The current key's root is not counted: a rotate batch derives it before
 * its first row, to check the key. v2 under a previous key costs that
 * key's root once per batch; v1 and legacy values cost one run per (salt,
 * key tried), shared by the rows of that salt.
 */
export function derivationsNeeded(row: RotationRow, shape: SecretShape, keyring: Keyring): number {
  if (row.table === "apiKeys") return 0;
  const { salt } = secretContextOf(row);
  const missing = (key: MasterKey | undefined, kind: "root" | "v1" | "legacy") => (key && !key.hasDerived(kind, salt) ? 1 : 0);
  switch (shape.kind) {
    case "previousKey":
      return missing(keyring.all[shape.keyIndex], "root");
    case "olderFormat":
      return missing(keyring.all[shape.keyIndex], "v1");
    case "legacyFormat":
      // Legacy ciphertext names no key: every configured key may be tried.
      return keyring.all.reduce((sum, key) => sum + missing(key, "legacy"), 0);
    default:
      return 0;
  }
}

/** Whether processing this row writes it (and so reads it again: a patch reads the document it changes). */
export function writesRow(shape: SecretShape, dryRun: boolean): boolean {
  return !dryRun && (shape.kind === "previousKey" || shape.kind === "olderFormat" || shape.kind === "legacyFormat" || shape.kind === "plaintext");
}

function hintsFor(service: string, plaintextCredentials: string): Credentials | null {
  try {
    return credentialHints(service, parseCredentials(plaintextCredentials));
  } catch {
    return null;
  }
}

/** Encrypts in format v2 under the current key and checks the result decrypts back before anything is written. */
export async function reencrypt(keyring: Keyring, plaintext: string, context: SecretContext): Promise<string> {
  const ciphertext = await encryptSecret(keyring, plaintext, context);
  const check = await decryptSecret(keyring, ciphertext, context);
  if (check.plaintext !== plaintext || check.format !== "v2" || check.needsReencryption) {
    throw new Error("re-encrypted value did not decrypt back to the original");
  }
  return ciphertext;
}

async function writeConnection(ctx: MutationCtx, doc: Doc<"connections">, ciphertext: string, plaintext: string) {
  // Rows of the original Dashtray have no hints (and no name): filled here as the upgrade job would.
  const hints = Object.keys(doc.credentialHints ?? {}).length === 0 ? hintsFor(doc.service, plaintext) : null;
  await ctx.db.patch("connections", doc._id, {
    encryptedCredentials: ciphertext,
    // Unset in the same write: never plaintext and ciphertext side by side.
    ...(doc.credentials !== undefined ? { credentials: undefined } : {}),
    ...(hints ? { credentialHints: hints } : {}),
    ...(doc.name === undefined ? { name: connectionNameOf(doc) } : {}),
  });
}

async function writeAiKey(ctx: MutationCtx, doc: Doc<"aiKeys">, ciphertext: string, plaintext: string) {
  await ctx.db.patch("aiKeys", doc._id, {
    encryptedKey: ciphertext,
    ...(doc.apiKey !== undefined ? { apiKey: undefined } : {}),
    ...(doc.hint === "" ? { hint: maskSecret(plaintext) } : {}),
  });
}

/**
 * Brings one row to format v2 under the current key: v2 under a previous
 * key, v1 (under any key) and legacy ciphertext are decrypted and encrypted
 * again with the row's secret version; plaintext is encrypted (or, for API
 * keys, hashed) and removed in the same write. A value no configured key
 * decrypts, or under a key the job does not know, is reported and left
 * untouched. With `dryRun`, decrypts (to find failures) but writes nothing.
 * Errors other than crypto failures of this row propagate, so the batch
 * rolls back as a whole.
 */
export async function processRow(
  ctx: MutationCtx,
  row: RotationRow,
  shape: SecretShape,
  keyring: Keyring,
  dryRun: boolean,
): Promise<RowOutcome> {
  if (shape.kind === "empty" || shape.kind === "current") return "alreadyCurrent";
  if (shape.kind === "invalid") return { failed: shape.code };
  if (shape.kind === "unknownKey") {
    // Known from the header alone; an unusable OLD_MASTER_KEY entry (which may be that key) is named instead.
    return { failed: keyring.keyNotFound(new CryptoError("UNKNOWN_KEY_ID", "unknown key")).code };
  }
  const outcome = shape.kind === "previousKey" ? "reEncrypted" : "migrated";
  if (row.table === "apiKeys") {
    if (!dryRun) await ctx.db.patch("apiKeys", row.doc._id, { keyHash: await sha256Hex(row.doc.keyHash), keyHashAlgorithm: "sha256" });
    return outcome;
  }

  const context = secretContextOf(row);
  const stored = storedSecret(row);
  let plaintext: string;
  if (shape.kind === "plaintext") {
    plaintext = stored.plaintext ?? "";
  } else {
    try {
      const keyHint = shape.kind === "previousKey" || shape.kind === "olderFormat" ? shape.keyIndex : undefined;
      // Once the upgrade retired the original format, a value in it was copied in from elsewhere: never re-bound here.
      const refuseLegacy = shape.kind === "legacyFormat" && (await readEncryptionSettings(ctx.db)).legacyRetired;
      // A v1 or original-format value where the row's version is above 0 is a restored copy: never re-bound here either.
      const requireVersionBinding = context.version > 0;
      const options = { refuseLegacy, requireVersionBinding, ...(keyHint === undefined ? {} : { keyHint }) };
      plaintext = (await decryptSecret(keyring, stored.encrypted ?? "", context, options)).plaintext;
    } catch (error) {
      if (isCryptoError(error)) return { failed: error.code };
      throw error;
    }
  }
  if (dryRun) return outcome;

  const ciphertext = await reencrypt(keyring, plaintext, context);
  if (row.table === "connections") await writeConnection(ctx, row.doc, ciphertext, plaintext);
  else await writeAiKey(ctx, row.doc, ciphertext, plaintext);
  return outcome;
}
