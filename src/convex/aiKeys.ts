/**
 * Each user's own AI provider key (one per user), used to generate insights.
 * Stored only as ciphertext salted with the user's id (secrets.ts); clients
 * see the provider and a masked hint.
 */
import { v } from "convex/values";
import type { Id } from "./_generated/dataModel";
import type { QueryCtx } from "./_generated/server";
import { recordAudit } from "./audit";
import { appError } from "./errors";
import { userMutation, userQuery } from "./functions";
import { maskSecret } from "./lib/mask";
import { encryptAiKey, loadKeyringForWrite, nextSecretVersion } from "./secrets";
import { aiKeySummaryValidator, aiProviderValidator, type AiProvider } from "./validators";

/** Accepted key lengths: real keys are 40–200 characters. */
export const MIN_AI_KEY_LENGTH = 20;
export const MAX_AI_KEY_LENGTH = 512;

/** What each provider's keys look like ("sk-…", "sk-proj-…"; "sk-ant-…"). */
const AI_KEY_SHAPES: Record<AiProvider, RegExp> = {
  openai: /^sk-[A-Za-z0-9_-]+$/,
  anthropic: /^sk-ant-[A-Za-z0-9_-]+$/,
};

/** `apiKey` trimmed, after checking it looks like a key of `provider`; the error never echoes it. */
function cleanAiKey(provider: AiProvider, apiKey: string): string {
  const key = apiKey.trim();
  if (key.length < MIN_AI_KEY_LENGTH || key.length > MAX_AI_KEY_LENGTH || !AI_KEY_SHAPES[provider].test(key)) {
    throw appError("INVALID_ARGUMENT", `This does not look like an API key from ${provider}`, { field: "apiKey" });
  }
  return key;
}

function findAiKey(ctx: QueryCtx, userId: Id<"users">) {
  return ctx.db
    .query("aiKeys")
    .withIndex("by_userId", (q) => q.eq("userId", userId))
    .unique();
}

/** Stores the caller's AI provider key, replacing any previous one. */
export const set = userMutation({
  args: { provider: aiProviderValidator, apiKey: v.string() },
  returns: v.null(),
  handler: async (ctx, args) => {
    const apiKey = cleanAiKey(args.provider, args.apiKey);
    const userId = ctx.user._id;
    const existing = await findAiKey(ctx, userId);
    // A new version: the ciphertext the row held before no longer decrypts, even if restored.
    const secretVersion = nextSecretVersion(existing?.secretVersion);
    const encryptedKey = await encryptAiKey(await loadKeyringForWrite(ctx), userId, apiKey, secretVersion);
    const fields = { provider: args.provider, encryptedKey, secretVersion, hint: maskSecret(apiKey), updatedAt: Date.now() };
    let aiKeyId: Id<"aiKeys">;
    if (existing) {
      // Also drops a legacy plaintext key, if the row still has one.
      await ctx.db.patch("aiKeys", existing._id, { ...fields, apiKey: undefined });
      aiKeyId = existing._id;
    } else {
      aiKeyId = await ctx.db.insert("aiKeys", { userId, createdAt: fields.updatedAt, ...fields });
    }
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

/** The caller's AI key as provider and masked hint, or null when none is stored. */
export const get = userQuery({
  args: {},
  returns: v.union(aiKeySummaryValidator, v.null()),
  handler: async (ctx) => {
    if (!ctx.user) return null;
    const aiKey = await findAiKey(ctx, ctx.user._id);
    return aiKey && { provider: aiKey.provider, hint: aiKey.hint, updatedAt: aiKey.updatedAt };
  },
});

/** Deletes the caller's AI key, if any. */
export const remove = userMutation({
  args: {},
  returns: v.null(),
  handler: async (ctx) => {
    const aiKey = await findAiKey(ctx, ctx.user._id);
    if (!aiKey) return null;
    await ctx.db.delete("aiKeys", aiKey._id);
    await recordAudit(ctx, {
      action: "aiKey.removed",
      actorId: ctx.user._id,
      ownerId: ctx.user._id,
      targetTable: "aiKeys",
      targetId: aiKey._id,
      detail: `provider: ${aiKey.provider}`,
    });
    return null;
  },
});
