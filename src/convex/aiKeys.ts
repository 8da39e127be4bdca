/**
 * Each user's own AI provider key (one per user), used to generate insights.
 * Stored only as ciphertext salted with the user's id (storedSecrets/encryption.ts); clients
 * see the provider and a masked hint.
 *
 * A user keeps one aiKeys row for good: removing the key empties the row
 * (a tombstone keeping its secretVersion) instead of deleting it, so a key
 * set later gets a higher version and no ciphertext of an earlier key
 * decrypts in the row again. Users of the original Dashtray may still have
 * their key on their users row (aiApiKey, aiProvider): it is used while they
 * have no key in aiKeys, until the upgrade job moves it there.
 */
import { v, type ObjectType } from "convex/values";
import type { Doc, Id } from "./_generated/dataModel";
import type { MutationCtx, QueryCtx } from "./_generated/server";
import { recordAudit } from "./audit/trail";
import { checkArgs, userMutation, userQuery } from "./access/builders";
import { appError } from "./errors";
import { maskSecret, UNKNOWN_HINT } from "./lib/mask";
import { looksLikeAiKey } from "./providers/ai/registry";
import { encryptAiKey, loadKeyringForWrite, nextSecretVersion } from "./storedSecrets/encryption";
import { findAiKeyRow, holdsKey } from "./storedSecrets/registry";
import { aiKeySummaryValidator, aiProviderValidator, type AiProvider } from "./validators";

/** Accepted key lengths: real keys are 40–200 characters. */
export const MIN_AI_KEY_LENGTH = 20;
export const MAX_AI_KEY_LENGTH = 512;

/** `apiKey` trimmed, after checking it looks like a key of `provider`; the error never echoes it. */
function cleanAiKey(provider: AiProvider, apiKey: string): string {
  const key = apiKey.trim();
  if (key.length < MIN_AI_KEY_LENGTH || key.length > MAX_AI_KEY_LENGTH || !looksLikeAiKey(provider, key)) {
    throw appError("INVALID_ARGUMENT", `This does not look like an API key from ${provider}`, { field: "apiKey" });
  }
  return key;
}

/** A user's AI key as stored: in aiKeys, or (original Dashtray, not yet upgraded) on the users row. */
export type StoredAiKey =
  | { table: "aiKeys"; row: Doc<"aiKeys"> }
  | { table: "users"; userId: Id<"users">; provider: AiProvider; encryptedKey: string; updatedAt: number };

/**
 * The user's AI key: their aiKeys row if it holds one, else the key the
 * original Dashtray left on their users row (aiApiKey with aiProvider), else
 * null. Insights and aiKeys.get read it the same way.
 */
export async function findStoredAiKey(db: QueryCtx["db"], userId: Id<"users">): Promise<StoredAiKey | null> {
  const row = await findAiKeyRow(db, userId);
  if (row && holdsKey(row)) return { table: "aiKeys", row };
  const user = await db.get("users", userId);
  if (user?.aiApiKey === undefined || user.aiProvider === undefined) return null;
  return {
    table: "users",
    userId,
    provider: user.aiProvider,
    encryptedKey: user.aiApiKey,
    updatedAt: user.updatedAt ?? user.createdAt,
  };
}

/** Removes the original Dashtray's copy of the user's key (users.aiApiKey, aiProvider), if any, in the caller's write. */
async function clearLegacyUserKey(ctx: Pick<MutationCtx, "db">, userId: Id<"users">): Promise<void> {
  const user = await ctx.db.get("users", userId);
  if (user && (user.aiApiKey !== undefined || user.aiProvider !== undefined)) {
    await ctx.db.patch("users", userId, { aiApiKey: undefined, aiProvider: undefined });
  }
}

/**
 * Stores the caller's AI provider key, replacing any previous one (also one
 * the original Dashtray left on their users row, removed in the same write).
 */
const setArgs = { provider: aiProviderValidator, apiKey: v.string() };

export const set = userMutation({
  returns: v.null(),
  // Arguments checked here, not by Convex: they hold the key (access/builders.ts, checkArgs).
  handler: async (ctx, raw: ObjectType<typeof setArgs>) => {
    const args = checkArgs(raw, setArgs);
    const apiKey = cleanAiKey(args.provider, args.apiKey);
    const userId = ctx.user._id;
    const existing = await findAiKeyRow(ctx.db, userId);
    // A new version, even after a removal (the row stays as a tombstone): no earlier ciphertext decrypts in this row.
    const secretVersion = nextSecretVersion(existing?.secretVersion);
    const encryptedKey = await encryptAiKey(await loadKeyringForWrite(ctx), userId, apiKey, secretVersion);
    const fields = { provider: args.provider, encryptedKey, secretVersion, hint: maskSecret(apiKey), updatedAt: Date.now() };
    let aiKeyId: Id<"aiKeys">;
    if (existing) {
      // Also drops a legacy plaintext key, if the row still has one, and revives a removed row.
      await ctx.db.patch("aiKeys", existing._id, { ...fields, apiKey: undefined, removedAt: undefined });
      aiKeyId = existing._id;
    } else {
      aiKeyId = await ctx.db.insert("aiKeys", { userId, createdAt: fields.updatedAt, ...fields });
    }
    await clearLegacyUserKey(ctx, userId);
    await recordAudit(ctx, {
      action: "aiKey.set",
      actorId: userId,
      ownerId: userId,
      targetTable: "aiKeys",
      targetId: aiKeyId,
      detail: `provider: ${args.provider}`,
    });
    return null;
  },
});

/**
 * The caller's AI key as provider and masked hint, or null when none is
 * stored. A key the original Dashtray stored shows the hint "…" until the
 * upgrade job moves it (hints need the plaintext).
 */
export const get = userQuery({
  args: {},
  returns: v.union(aiKeySummaryValidator, v.null()),
  handler: async (ctx) => {
    if (!ctx.user) return null;
    const stored = await findStoredAiKey(ctx.db, ctx.user._id);
    if (!stored) return null;
    if (stored.table === "users") return { provider: stored.provider, hint: UNKNOWN_HINT, updatedAt: stored.updatedAt };
    const { provider, hint, updatedAt } = stored.row;
    return { provider, hint: hint || UNKNOWN_HINT, updatedAt };
  },
});

/**
 * Deletes the caller's AI key, if any: the aiKeys row keeps only its
 * provider and secretVersion (a tombstone, see above), and a key the
 * original Dashtray left on the users row is removed too.
 */
export const remove = userMutation({
  args: {},
  returns: v.null(),
  handler: async (ctx) => {
    const userId = ctx.user._id;
    const stored = await findStoredAiKey(ctx.db, userId);
    if (!stored) return null;
    await clearLegacyUserKey(ctx, userId);
    let targetTable: "aiKeys" | "users" = "users";
    let targetId: string = userId;
    const row = stored.table === "aiKeys" ? stored.row : null;
    if (row) {
      const now = Date.now();
      await ctx.db.patch("aiKeys", row._id, { encryptedKey: undefined, apiKey: undefined, hint: "", removedAt: now, updatedAt: now });
      targetTable = "aiKeys";
      targetId = row._id;
    }
    await recordAudit(ctx, {
      action: "aiKey.removed",
      actorId: userId,
      ownerId: userId,
      targetTable,
      targetId,
      detail: `provider: ${stored.table === "aiKeys" ? stored.row.provider : stored.provider}`,
    });
    return null;
  },
});
