/**
 * Rows of the tables holding registered secrets, read in index order after a
 * cursor (by salt, so a batch derives each salt's v1 or original key once),
 * and what each row's secret is, from the row alone against a list of key
 * ids: no key, no crypto. Shared by the job's batches and status's inventory.
 */
import type { Doc, Id } from "../_generated/dataModel";
import type { QueryCtx } from "../_generated/server";
import { describeCiphertext } from "../lib/cipher";
import { isSha256Hex } from "../lib/hash";
import type { KeyIdOrder } from "../validators";
import { BudgetedRowReader, type BatchBudget } from "./batchReader";
import type { Cursor, JobTable, Tally } from "./validators";

export type JobRow =
  | { table: "connections"; doc: Doc<"connections"> }
  | { table: "users"; doc: Doc<"users"> }
  | { table: "aiKeys"; doc: Doc<"aiKeys"> }
  | { table: "apiKeys"; doc: Doc<"apiKeys"> };
/** Rows status's inventory also reads: short-lived ciphertext tables the job never rewrites. */
export type SecretRow = JobRow | { table: "oauthStates"; doc: Doc<"oauthStates"> } | { table: "oauthRevocations"; doc: Doc<"oauthRevocations"> };
export type SecretTable = SecretRow["table"];

export const JOB_TABLES: readonly JobTable[] = ["connections", "users", "aiKeys", "apiKeys"];
export const SECRET_ROW_TABLES: readonly SecretTable[] = [...JOB_TABLES, "oauthStates", "oauthRevocations"];

/** A stored secret, from its shape alone. */
export type Shape =
  | { kind: "current" }
  | { kind: "previousKey"; keyId: string; keyIndex: number }
  | { kind: "unknownKey"; keyId: string; format: "v1" | "v2" }
  /** v1 under a configured key (current or previous): migrated to v2. */
  | { kind: "olderFormat"; keyId: string; keyIndex: number }
  | { kind: "originalFormat" }
  | { kind: "plaintext" }
  | { kind: "invalid"; code: string };

type Db = QueryCtx["db"];

/** The index whose first field is the row's salt, per job table that has one (users and short-lived tables: creation order). */
const SALT_INDEX = { connections: ["by_projectId", "projectId"], apiKeys: ["by_projectId", "projectId"], aiKeys: ["by_userId", "userId"] } as const;

/**
 * Up to `limit` rows of a table strictly after `after`, in index order: the
 * rest of the cursor's salt group, then the groups after it. The index is
 * chosen per table at run time, so the query is typed as the connections one.
 */
export async function readRows(db: Db, table: SecretTable, after: Cursor | undefined, limit: number): Promise<SecretRow[]> {
  const wrap = (docs: object[]) => docs.map((doc) => ({ table, doc }) as SecretRow);
  if (!(table in SALT_INDEX)) {
    return wrap(await db.query(table).withIndex("by_creation_time", (q) => (after ? q.gt("_creationTime", after.creationTime) : q)).take(limit));
  }
  const [index, field] = SALT_INDEX[table as keyof typeof SALT_INDEX] as unknown as ["by_projectId", "projectId"];
  const query = db.query(table as "connections");
  const group = after?.group as Id<"projects"> | undefined;
  const rest = group === undefined ? [] : await query.withIndex(index, (q) => q.eq(field, group).gt("_creationTime", after!.creationTime)).take(limit);
  if (rest.length >= limit) return wrap(rest);
  const later = await db.query(table as "connections").withIndex(index, (q) => (group === undefined ? q : q.gt(field, group))).take(limit - rest.length);
  return wrap([...rest, ...later]);
}

/** The index position of a row, for a cursor. */
export function positionOf(row: SecretRow): Cursor {
  const group = row.table === "aiKeys" ? row.doc.userId : row.table === "connections" || row.table === "apiKeys" ? row.doc.projectId : "";
  return { group, creationTime: row.doc._creationTime };
}

/** What a ciphertext field's value is against `keys` (index 0: the current key). `plaintextAllowed`: the field may hold plaintext. */
export function shapeOfValue(value: string, keys: KeyIdOrder, plaintextAllowed = false): Shape {
  const described = describeCiphertext(value);
  switch (described.format) {
    case "legacy":
      return { kind: "originalFormat" };
    case "plaintext":
      return plaintextAllowed ? { kind: "plaintext" } : { kind: "invalid", code: "NOT_CIPHERTEXT" };
    case "invalid":
      return { kind: "invalid", code: described.code };
    case "v1": {
      const keyIndex = keys.v1.indexOf(described.keyId);
      return keyIndex >= 0 ? { kind: "olderFormat", keyId: described.keyId, keyIndex } : { kind: "unknownKey", keyId: described.keyId, format: "v1" };
    }
    case "v2": {
      const keyIndex = keys.v2.indexOf(described.keyId);
      if (keyIndex === 0) return { kind: "current" };
      return keyIndex > 0 ? { kind: "previousKey", keyId: described.keyId, keyIndex } : { kind: "unknownKey", keyId: described.keyId, format: "v2" };
    }
  }
}

/** A secret held either as ciphertext or (older versions) as plaintext: both at once is a conflict nobody may guess. */
function encryptedOrPlain(encrypted: string | undefined, plain: unknown, keys: KeyIdOrder): Shape | null {
  if (encrypted !== undefined && plain !== undefined) return { kind: "invalid", code: "CONFLICTING_FIELDS" };
  if (plain !== undefined) return { kind: "plaintext" };
  return encrypted === undefined ? null : shapeOfValue(encrypted, keys);
}

/** The row's secret (null: none), and whether the row lacks fields the original did not write. */
export function classify(row: SecretRow, keys: KeyIdOrder): { shape: Shape | null; olderShape: boolean } {
  switch (row.table) {
    case "connections": {
      const { encryptedCredentials, credentials, credentialHints, name } = row.doc;
      const shape = encryptedOrPlain(encryptedCredentials, credentials, keys);
      const noHints = credentialHints === undefined || (shape !== null && Object.keys(credentialHints).length === 0);
      return { shape, olderShape: name === undefined || noHints };
    }
    case "aiKeys": {
      const shape = encryptedOrPlain(row.doc.encryptedKey, row.doc.apiKey, keys);
      return { shape, olderShape: shape !== null && row.doc.hint === "" };
    }
    case "users": {
      const { aiApiKey, aiProvider } = row.doc;
      return { shape: aiApiKey === undefined ? null : shapeOfValue(aiApiKey, keys, true), olderShape: aiApiKey !== undefined || aiProvider !== undefined };
    }
    case "apiKeys": {
      const { keyHash, keyHashAlgorithm, prefix, keyPrefix } = row.doc;
      const olderShape = keyHashAlgorithm === undefined || prefix === undefined || keyPrefix !== undefined;
      if (keyHashAlgorithm === "sha256") return { shape: { kind: "current" }, olderShape };
      // Hashing an empty value would make the empty string a valid key.
      if (keyHash === "") return { shape: { kind: "invalid", code: "EMPTY_API_KEY" }, olderShape };
      // Every version that hashed stored lowercase SHA-256 hex; anything else is the original's plaintext key.
      return { shape: isSha256Hex(keyHash) ? { kind: "current" } : { kind: "plaintext" }, olderShape };
    }
    case "oauthStates": {
      const shapes = [row.doc.encryptedCodeVerifier, row.doc.encryptedCode].flatMap((value) => (value === undefined ? [] : [shapeOfValue(value, keys)]));
      return { shape: shapes.find((shape) => shape.kind !== "current") ?? shapes[0] ?? null, olderShape: false };
    }
    case "oauthRevocations":
      return { shape: shapeOfValue(row.doc.encryptedCredentials, keys), olderShape: false };
  }
}

export function emptyTally(): Tally {
  return { rows: 0, upToDate: 0, previousKey: 0, unknownKey: 0, olderFormat: 0, originalFormat: 0, plaintext: 0, olderShape: 0, invalid: 0, keyIds: [] };
}

/** Most distinct key ids a tally lists (the rest are counted, not listed). */
export const MAX_TALLY_KEY_IDS = 50;

function addKeyId(tally: Tally, keyId: string, format: "v1" | "v2", rows: number): void {
  const entry = tally.keyIds.find((known) => known.keyId === keyId && known.format === format);
  if (entry) entry.rows += rows;
  else if (tally.keyIds.length < MAX_TALLY_KEY_IDS) tally.keyIds.push({ keyId, format, rows });
}

/** Adds one row to `tally` (in place). */
export function tallyRow(tally: Tally, row: SecretRow, keys: KeyIdOrder): void {
  const { shape, olderShape } = classify(row, keys);
  tally.rows++;
  const kind = shape?.kind ?? "current";
  if (kind === "current") tally[olderShape ? "olderShape" : "upToDate"]++;
  else if (kind === "originalFormat") {
    tally.olderFormat++;
    tally.originalFormat++;
  }
  else tally[kind]++;
  if (shape && "keyId" in shape && row.table !== "apiKeys") {
    addKeyId(tally, shape.keyId, shape.kind === "previousKey" || (shape.kind === "unknownKey" && shape.format === "v2") ? "v2" : "v1", 1);
  } else if (kind === "current" && shape && row.table !== "apiKeys" && keys.v2[0]) addKeyId(tally, keys.v2[0], "v2", 1);
  // Plaintext beside ciphertext is a failure, but its ciphertext may still be under an old key: its id counts.
  const beside = row.table === "connections" ? row.doc.encryptedCredentials : row.table === "aiKeys" ? row.doc.encryptedKey : undefined;
  if (shape?.kind === "invalid" && shape.code === "CONFLICTING_FIELDS" && beside !== undefined) {
    const inner = shapeOfValue(beside, keys);
    if ("keyId" in inner) addKeyId(tally, inner.keyId, inner.kind === "previousKey" || (inner.kind === "unknownKey" && inner.format === "v2") ? "v2" : "v1", 1);
    else if (inner.kind === "current" && keys.v2[0]) addKeyId(tally, keys.v2[0], "v2", 1);
  }
}

/** Two tallies added up. */
export function addTallies(a: Tally, b: Tally): Tally {
  const sum: Tally = { ...emptyTally(), keyIds: a.keyIds.map((entry) => ({ ...entry })) };
  for (const field of ["rows", "upToDate", "previousKey", "unknownKey", "olderFormat", "originalFormat", "plaintext", "olderShape", "invalid"] as const) {
    sum[field] = a[field] + b[field];
  }
  for (const { keyId, format, rows } of b.keyIds) addKeyId(sum, keyId, format, rows);
  return sum;
}

/**
 * Rows of `table` after `cursor` within `budget`, tallied by header against
 * `keys` (no crypto): a scan or verify batch, or a page of status's
 * inventory. `firstOriginal`: the first row holding an original-format value.
 */
export async function tallyPage(db: Db, table: SecretTable, cursor: Cursor | undefined, keys: KeyIdOrder, budget: BatchBudget) {
  const rows = new BudgetedRowReader<SecretRow, Cursor>((after, limit) => readRows(db, table, after, limit), positionOf, cursor, budget, 1);
  const tally = emptyTally();
  let last = cursor;
  let firstOriginal: string | undefined;
  for (let next = await rows.next(); next; next = await rows.next()) {
    tallyRow(tally, next.row, keys);
    if (firstOriginal === undefined && classify(next.row, keys).shape?.kind === "originalFormat") firstOriginal = next.row.doc._id;
    last = positionOf(next.row);
    rows.handled++;
  }
  return { tally, cursor: last, done: rows.tableDone, handled: rows.handled, bytes: rows.bytes, firstOriginal };
}
