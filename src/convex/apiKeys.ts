/**
 * Platform API keys: let a program read one project's metrics over HTTP
 * (http.ts). A key is shown once, when created; only its SHA-256 hash and a
 * short display prefix are stored.
 */
import { v } from "convex/values";
import { internalMutation } from "./_generated/server";
import { recordAudit } from "./audit";
import { apiKeyMutation, projectMutation, projectQuery } from "./functions";
import { cleanName } from "./input";
import { randomToken, sha256Hex } from "./lib/hash";
import { apiKeySummaryValidator } from "./validators";

/** Every key starts with this, so leaked keys are easy to recognise and scan for. */
export const API_KEY_PREFIX = "dt_live_";
/** CSPRNG bytes after the prefix (256 bits). */
const API_KEY_RANDOM_BYTES = 32;
/** Characters of the key kept for display: the prefix and 4 random characters. */
const DISPLAY_PREFIX_LENGTH = API_KEY_PREFIX.length + 4;
/** lastUsedAt is only rewritten when older than this, to avoid a write per request. */
export const LAST_USED_RESOLUTION_MS = 60_000;
/** Most keys apiKeys.list returns (newest first). */
export const MAX_API_KEYS_LISTED = 100;

/**
 * Creates an API key for the project (owners and admins) and returns it:
 * the only time the key itself is visible.
 */
export const create = projectMutation({
  args: { name: v.string() },
  minimumRole: "admin",
  returns: v.object({ apiKeyId: v.id("apiKeys"), apiKey: v.string() }),
  handler: async (ctx, args) => {
    const name = cleanName(args.name, "API key name");
    const apiKey = API_KEY_PREFIX + randomToken(API_KEY_RANDOM_BYTES);
    const apiKeyId = await ctx.db.insert("apiKeys", {
      projectId: args.projectId,
      name,
      keyHash: await sha256Hex(apiKey),
      prefix: apiKey.slice(0, DISPLAY_PREFIX_LENGTH),
      createdBy: ctx.user._id,
      createdAt: Date.now(),
    });
    await recordAudit(ctx, {
      action: "apiKey.created",
      actorId: ctx.user._id,
      projectId: args.projectId,
      targetTable: "apiKeys",
      targetId: apiKeyId,
    });
    return { apiKeyId, apiKey };
  },
});

/** The project's API keys (members), newest first: display prefix and usage, never the key or its hash. */
export const list = projectQuery({
  args: {},
  returns: v.array(apiKeySummaryValidator),
  handler: async (ctx, { projectId }) => {
    const apiKeys = await ctx.db
      .query("apiKeys")
      .withIndex("by_projectId", (q) => q.eq("projectId", projectId))
      .order("desc")
      .take(MAX_API_KEYS_LISTED);
    return apiKeys.map((apiKey) => ({
      apiKeyId: apiKey._id,
      name: apiKey.name,
      prefix: apiKey.prefix,
      createdBy: apiKey.createdBy,
      createdAt: apiKey.createdAt,
      lastUsedAt: apiKey.lastUsedAt,
      revokedAt: apiKey.revokedAt,
    }));
  },
});

/** Revokes an API key (owners and admins); it stops working at once. Revoking twice is a no-op. */
export const revoke = apiKeyMutation({
  args: {},
  minimumRole: "admin",
  returns: v.null(),
  handler: async (ctx) => {
    const { apiKey } = ctx;
    if (apiKey.revokedAt !== undefined) return null;
    await ctx.db.patch("apiKeys", apiKey._id, { revokedAt: Date.now() });
    await recordAudit(ctx, {
      action: "apiKey.revoked",
      actorId: ctx.user._id,
      projectId: apiKey.projectId,
      targetTable: "apiKeys",
      targetId: apiKey._id,
    });
    return null;
  },
});

/**
 * The project of the live (not revoked) key with this SHA-256 hash, or null;
 * records the use in lastUsedAt. Takes the hash, never the key, so the key
 * is not a function argument anywhere.
 */
export const authenticate = internalMutation({
  args: { keyHash: v.string() },
  returns: v.union(v.id("projects"), v.null()),
  handler: async (ctx, { keyHash }) => {
    const apiKey = await ctx.db
      .query("apiKeys")
      .withIndex("by_keyHash", (q) => q.eq("keyHash", keyHash))
      .first();
    if (!apiKey || apiKey.revokedAt !== undefined) return null;
    const now = Date.now();
    if (apiKey.lastUsedAt === undefined || now - apiKey.lastUsedAt >= LAST_USED_RESOLUTION_MS) {
      await ctx.db.patch("apiKeys", apiKey._id, { lastUsedAt: now });
    }
    return apiKey.projectId;
  },
});
