/**
 * Platform API keys: let a program read one project's metrics over HTTP
 * (http.ts). A key is shown once, when created; only its SHA-256 hash and a
 * short display prefix are stored.
 */
import { v } from "convex/values";
import type { Doc, Id } from "./_generated/dataModel";
import { internalMutation, type MutationCtx, type QueryCtx } from "./_generated/server";
import { recordAudit, recordUserAct } from "./audit/trail";
import { appError } from "./errors";
import { apiKeyMutation, projectMutation, projectQuery } from "./access/builders";
import { cleanName } from "./access/input";
import { randomToken, sha256Hex } from "./lib/hash";
import { authThrottledUntil, recordAuthFailure } from "./access/rateLimits";
import { apiKeyPrefixOf } from "./upgrade/defaults";
import { API_KEY_PREFIX, DISPLAY_PREFIX_LENGTH } from "./storedSecrets/registry";
import { apiKeySummaryValidator } from "./validators";

/** CSPRNG bytes after the prefix (256 bits). */
const API_KEY_RANDOM_BYTES = 32;
/** lastUsedAt is only rewritten when older than this, to avoid a write per request. */
export const LAST_USED_RESOLUTION_MS = 60_000;
/** Most live (not revoked) keys a project can have, so apiKeys.list always shows all of them. */
export const MAX_LIVE_API_KEYS = 25;
/** Most keys apiKeys.list returns: every live key, then the most recently revoked ones. */
export const MAX_API_KEYS_LISTED = 100;

/** Live keys of a project, or only those one user created; bounded by MAX_API_KEYS_LISTED. */
function liveKeys(ctx: QueryCtx, projectId: Id<"projects">, createdBy?: Id<"users">) {
  return ctx.db
    .query("apiKeys")
    .withIndex("by_projectId_and_revokedAt_and_createdBy", (q) => {
      const live = q.eq("projectId", projectId).eq("revokedAt", undefined);
      return createdBy === undefined ? live : live.eq("createdBy", createdBy);
    })
    .take(MAX_API_KEYS_LISTED);
}

/** Revokes a live key and records who did it (and why, when it was not a direct revoke). */
async function revokeKey(ctx: MutationCtx, apiKey: Doc<"apiKeys">, actorId: Id<"users">, detail?: string) {
  await ctx.db.patch("apiKeys", apiKey._id, { revokedAt: Date.now() });
  await recordAudit(ctx, {
    action: "apiKey.revoked",
    actorId,
    projectId: apiKey.projectId,
    targetTable: "apiKeys",
    targetId: apiKey._id,
    ...(detail !== undefined ? { detail } : {}),
  });
}

/**
 * Revokes the live keys `userId` created in the project, in the caller's
 * transaction: used when the user is removed from the project, so that
 * their keys stop working together with their membership.
 */
export async function revokeKeysOfRemovedMember(
  ctx: MutationCtx,
  projectId: Id<"projects">,
  userId: Id<"users">,
  actorId: Id<"users">,
): Promise<void> {
  for (const apiKey of await liveKeys(ctx, projectId, userId)) {
    await revokeKey(ctx, apiKey, actorId, "its creator was removed from the project");
  }
}

/**
 * Creates an API key for the project (owners and admins) and returns it:
 * the only time the key itself is visible. CONFLICT when the project
 * already has MAX_LIVE_API_KEYS live keys.
 */
export const create = projectMutation({
  args: { name: v.string() },
  minimumRole: "admin",
  returns: v.object({ apiKeyId: v.id("apiKeys"), apiKey: v.string() }),
  handler: async (ctx, args) => {
    const name = cleanName(args.name, "API key name");
    if ((await liveKeys(ctx, args.projectId)).length >= MAX_LIVE_API_KEYS) {
      throw appError("CONFLICT", `A project can have at most ${MAX_LIVE_API_KEYS} API keys: revoke one first`);
    }
    const apiKey = API_KEY_PREFIX + randomToken(API_KEY_RANDOM_BYTES);
    const apiKeyId = await ctx.db.insert("apiKeys", {
      projectId: args.projectId,
      name,
      keyHash: await sha256Hex(apiKey),
      keyHashAlgorithm: "sha256",
      prefix: apiKey.slice(0, DISPLAY_PREFIX_LENGTH),
      createdBy: ctx.user._id,
      createdAt: Date.now(),
    });
    await recordUserAct(ctx, "apiKey.created", args.projectId, "apiKeys", apiKeyId);
    return { apiKeyId, apiKey };
  },
});

/**
 * The project's API keys (members): every live key, newest first, then the
 * most recently revoked keys, up to MAX_API_KEYS_LISTED in all. Display
 * prefix and usage, never the key or its hash.
 */
export const list = projectQuery({
  args: {},
  returns: v.array(apiKeySummaryValidator),
  handler: async (ctx, { projectId }) => {
    // The index orders live keys by creator first: put them back in time order.
    const live = (await liveKeys(ctx, projectId)).sort((a, b) => b._creationTime - a._creationTime);
    const revoked = await ctx.db
      .query("apiKeys")
      .withIndex("by_projectId_and_revokedAt_and_createdBy", (q) =>
        q.eq("projectId", projectId).gt("revokedAt", undefined),
      )
      .order("desc")
      .take(MAX_API_KEYS_LISTED - live.length);
    return [...live, ...revoked].map((apiKey) => ({
      apiKeyId: apiKey._id,
      name: apiKey.name,
      prefix: apiKeyPrefixOf(apiKey),
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
    if (ctx.apiKey.revokedAt === undefined) await revokeKey(ctx, ctx.apiKey, ctx.user._id);
    return null;
  },
});

/** Whether a key's lastUsedAt is old enough to be rewritten (see LAST_USED_RESOLUTION_MS). */
export function usageIsStale(lastUsedAt: number | null | undefined, now: number): boolean {
  return lastUsedAt === null || lastUsedAt === undefined || now - lastUsedAt >= LAST_USED_RESOLUTION_MS;
}

/**
 * Authenticates one HTTP API request, in one mutation (so the rate limiter
 * reads a real clock): refuses a throttled source before looking at the key
 * (access/rateLimits.ts authThrottledUntil), then looks up the live (not revoked)
 * key with this SHA-256 hash. A failure is counted against the source and,
 * for a token shaped like a platform key, its prefix (`prefix` null: any
 * other shape, no prefix bucket). A success writes nothing unless the key's
 * lastUsedAt is stale (about once a minute per key). Takes the hash, never
 * the key, so the key is not a function argument anywhere.
 */
export const authenticate = internalMutation({
  args: { keyHash: v.string(), source: v.string(), prefix: v.union(v.string(), v.null()) },
  returns: v.union(
    v.object({ kind: v.literal("throttled"), until: v.number() }),
    v.object({ kind: v.literal("unauthorized") }),
    v.object({ kind: v.literal("authenticated"), projectId: v.id("projects") }),
  ),
  handler: async (ctx, { keyHash, source, prefix }) => {
    // Judged before the key's validity, so a throttled source learns nothing about the keys it tries.
    const until = await authThrottledUntil(ctx, source, prefix);
    if (until !== null) return { kind: "throttled" as const, until };
    const apiKey = await ctx.db
      .query("apiKeys")
      .withIndex("by_keyHash", (q) => q.eq("keyHash", keyHash))
      .first();
    // A project being removed loses its row first and its keys in a later batch: its keys stop at once.
    if (!apiKey || apiKey.revokedAt !== undefined || (await ctx.db.get("projects", apiKey.projectId)) === null) {
      await recordAuthFailure(ctx, source, prefix);
      return { kind: "unauthorized" as const };
    }
    const now = Date.now();
    if (usageIsStale(apiKey.lastUsedAt, now)) await ctx.db.patch("apiKeys", apiKey._id, { lastUsedAt: now });
    return { kind: "authenticated" as const, projectId: apiKey.projectId };
  },
});
