/**
 * The job's work on one row: every registered secret brought to v2 under the
 * current key (same secret version; plaintext removed in the same write),
 * API keys hashed, and what the original Dashtray did not write filled in.
 * A row that cannot be is a failure, left byte for byte; a value whose key
 * went away since the job started is `missingKey` (the job pauses there).
 */
import type { Doc } from "../_generated/dataModel";
import type { MutationCtx } from "../_generated/server";
import { credentialHints } from "../providers/integrations/registry";
import { decryptSecret, encryptSecret, type SecretContext } from "../lib/cipher";
import { CryptoError, isCryptoError } from "../lib/errors";
import { isSha256Hex, sha256Hex } from "../lib/hash";
import type { Keyring } from "../lib/keyring";
import { maskSecret } from "../lib/mask";
import { nextSecretVersion, parseCredentials } from "../storedSecrets/encryption";
import {
  aiKeySecretContext,
  API_KEY_PREFIX,
  connectionSecretContext,
  decryptPolicy,
  DISPLAY_PREFIX_LENGTH,
  findAiKeyRow,
  holdsKey,
  registered,
  type LegacyPolicy,
  type RegisteredField,
} from "../storedSecrets/registry";
import { connectionNameOf, UNKNOWN_HINT } from "../upgrade/defaults";
import type { JobRow, Shape } from "./rows";

export type Outcome = "alreadyCurrent" | "reEncrypted" | "migrated" | { failed: string; keyId?: string } | { missingKey: string | null };

export interface Work {
  ctx: MutationCtx;
  keyring: Keyring;
  policy: LegacyPolicy;
  dryRun: boolean;
  /** Whether the job's keys are all still configured (computed only when a value fails to open). */
  jobKeysConfigured: () => Promise<boolean>;
}

/** Encrypts in v2 under the current key and checks the result decrypts back before anything is written. */
async function reencrypt(keyring: Keyring, plaintext: string, context: SecretContext): Promise<string> {
  const ciphertext = await encryptSecret(keyring, plaintext, context);
  const check = await decryptSecret(keyring, ciphertext, context);
  if (check.plaintext !== plaintext || check.needsReencryption) throw new Error("re-encrypted value did not decrypt back to the original");
  return ciphertext;
}

/**
 * Opens a stored value under the registry's policy for its field. A value
 * no configured key opens is `missingKey` when one of the job's keys is gone
 * since it started (the job pauses), else this row's failure.
 */
async function open(work: Work, value: string, context: SecretContext, field: RegisteredField, shape: Shape): Promise<{ plaintext: string } | { outcome: Outcome }> {
  const keyHint = "keyIndex" in shape ? shape.keyIndex : undefined;
  const options = { ...decryptPolicy(field, context, work.policy), ...(keyHint === undefined ? {} : { keyHint }) };
  try {
    return { plaintext: (await decryptSecret(work.keyring, value, context, options)).plaintext };
  } catch (error) {
    if (!isCryptoError(error)) throw error;
    const keyId = "keyId" in shape ? shape.keyId : undefined;
    const mayBeKey = error.code === "UNKNOWN_KEY_ID" || (error.code === "DECRYPTION_FAILED" && shape.kind !== "previousKey");
    if (mayBeKey && !(await work.jobKeysConfigured())) return { outcome: { missingKey: keyId ?? null } };
    return { outcome: { failed: work.keyring.keyNotFound(error).code, ...(keyId ? { keyId } : {}) } };
  }
}

const outcomeOf = (shape: Shape | null): Outcome => (shape?.kind === "previousKey" ? "reEncrypted" : shape === null || shape.kind === "current" ? "alreadyCurrent" : "migrated");

async function connection(work: Work, doc: Doc<"connections">, shape: Shape | null): Promise<Outcome> {
  const context = connectionSecretContext(doc.projectId, doc._id, doc.secretVersion);
  const noHints = doc.credentialHints === undefined || Object.keys(doc.credentialHints).length === 0;
  let plaintext: string | null = null;
  if (doc.credentials !== undefined) plaintext = JSON.stringify(doc.credentials);
  else if (doc.encryptedCredentials !== undefined && shape && (shape.kind !== "current" || noHints)) {
    const opened = await open(work, doc.encryptedCredentials, context, registered("connections", "encryptedCredentials"), shape);
    if ("outcome" in opened) return opened.outcome;
    plaintext = opened.plaintext;
  }
  const patch: Partial<Doc<"connections">> = {};
  if (doc.name === undefined) patch.name = connectionNameOf(doc);
  if (plaintext !== null && noHints) {
    let credentials;
    try {
      credentials = parseCredentials(plaintext);
    } catch {
      // The original accepted any JSON; the current code reads an object of strings only.
      return { failed: "INVALID_CREDENTIALS" };
    }
    patch.credentialHints = credentialHints(doc.service, credentials);
  } else if (plaintext === null && doc.credentialHints === undefined) patch.credentialHints = {};
  if (work.dryRun) return outcomeOf(shape);
  if (plaintext !== null && shape?.kind !== "current") {
    patch.encryptedCredentials = await reencrypt(work.keyring, plaintext, context);
    // Unset in the same write: never plaintext and ciphertext side by side.
    if (doc.credentials !== undefined) patch.credentials = undefined;
  }
  if (Object.keys(patch).length > 0) await work.ctx.db.patch("connections", doc._id, patch);
  return outcomeOf(shape);
}

async function aiKey(work: Work, doc: Doc<"aiKeys">, shape: Shape | null): Promise<Outcome> {
  const context = aiKeySecretContext(doc.userId, doc.secretVersion);
  let plaintext = doc.apiKey;
  if (plaintext === undefined && doc.encryptedKey !== undefined && shape) {
    const opened = await open(work, doc.encryptedKey, context, registered("aiKeys", "encryptedKey"), shape);
    if ("outcome" in opened) return opened.outcome;
    plaintext = opened.plaintext;
  }
  if (work.dryRun || plaintext === undefined) return outcomeOf(shape);
  await work.ctx.db.patch("aiKeys", doc._id, {
    ...(shape?.kind !== "current" ? { encryptedKey: await reencrypt(work.keyring, plaintext, context), apiKey: undefined } : {}),
    ...(doc.hint === "" ? { hint: maskSecret(plaintext) } : {}),
  });
  return outcomeOf(shape);
}

/**
 * Moves the original's AI key from the users row to aiKeys, in v2 with the
 * next secret version of the user's aiKeys row (a removed key's tombstone
 * included, so versions never restart), removing aiApiKey and aiProvider in
 * the same transaction.
 */
async function user(work: Work, doc: Doc<"users">, shape: Shape | null): Promise<Outcome> {
  const { ctx } = work;
  if (doc.aiApiKey === undefined || shape === null) {
    // A provider without a key holds no secret.
    if (!work.dryRun) await ctx.db.patch("users", doc._id, { aiProvider: undefined });
    return "migrated";
  }
  if (doc.aiProvider === undefined) return { failed: "MISSING_AI_PROVIDER" };
  const existing = await findAiKeyRow(ctx.db, doc._id);
  // The user set a key with the current code: which one is right is not ours to guess.
  if (existing && holdsKey(existing)) return { failed: "CONFLICTING_FIELDS" };
  const opened = await open(work, doc.aiApiKey, aiKeySecretContext(doc._id, 0), registered("users", "aiApiKey"), shape);
  if ("outcome" in opened) return opened.outcome;
  if (work.dryRun) return "migrated";
  const secretVersion = nextSecretVersion(existing?.secretVersion);
  const encryptedKey = await reencrypt(work.keyring, opened.plaintext, aiKeySecretContext(doc._id, secretVersion));
  const at = doc.updatedAt ?? doc.createdAt;
  const fields = { provider: doc.aiProvider, encryptedKey, secretVersion, hint: maskSecret(opened.plaintext), updatedAt: at };
  if (existing) await ctx.db.patch("aiKeys", existing._id, { ...fields, apiKey: undefined, removedAt: undefined });
  else await ctx.db.insert("aiKeys", { userId: doc._id, createdAt: at, ...fields });
  await ctx.db.patch("users", doc._id, { aiApiKey: undefined, aiProvider: undefined });
  return "migrated";
}

async function apiKey(work: Work, doc: Doc<"apiKeys">, shape: Shape | null): Promise<Outcome> {
  const patch: Partial<Doc<"apiKeys">> = {};
  let plaintextPrefix: string | undefined;
  if (doc.keyHashAlgorithm === undefined) {
    if (!isSha256Hex(doc.keyHash)) {
      patch.keyHash = await sha256Hex(doc.keyHash);
      // As apiKeys.create keeps it for current keys, the original's 8 characters otherwise.
      plaintextPrefix = doc.keyHash.slice(0, doc.keyHash.startsWith(API_KEY_PREFIX) ? DISPLAY_PREFIX_LENGTH : 8);
    }
    patch.keyHashAlgorithm = "sha256";
  }
  if (doc.prefix === undefined) patch.prefix = doc.keyPrefix ?? plaintextPrefix ?? UNKNOWN_HINT;
  if (doc.keyPrefix !== undefined) patch.keyPrefix = undefined;
  if (!work.dryRun) await work.ctx.db.patch("apiKeys", doc._id, patch);
  return outcomeOf(shape);
}

/** Brings one row up to date (in a dry run: decrypts to find failures, writes nothing). */
export async function rewriteRow(work: Work, row: JobRow, shape: Shape | null, olderShape: boolean): Promise<Outcome> {
  if ((shape === null || shape.kind === "current") && !olderShape) return "alreadyCurrent";
  if (shape?.kind === "invalid") return { failed: shape.code };
  if (shape?.kind === "unknownKey") // Known from the header alone; an unusable OLD_MASTER_KEY entry (which may be that key) is named instead.
    return { failed: work.keyring.keyNotFound(new CryptoError("UNKNOWN_KEY_ID", "unknown key")).code, keyId: shape.keyId };
  const outcome =
    row.table === "connections"
      ? await connection(work, row.doc, shape)
      : row.table === "aiKeys"
        ? await aiKey(work, row.doc, shape)
        : row.table === "users"
          ? await user(work, row.doc, shape)
          : await apiKey(work, row.doc, shape);
  // A current secret in a row the original wrote: the row was filled in (names, hints, prefix, hash algorithm).
  return outcome === "alreadyCurrent" && olderShape ? "migrated" : outcome;
}
