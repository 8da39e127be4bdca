/**
 * Every rate limit of the deployment, through convex-helpers' rate limiter
 * (defineRateLimits: checkRateLimit, rateLimit, resetRateLimit; token
 * buckets in the rateLimits table). Nothing here reads that table's rows or
 * computes with them: the library is the one way to rate-limit.
 *
 * - Actions that reach third-party services on a user's behalf, so a caller
 *   can neither hammer a provider with one connection's credentials nor use
 *   this deployment to test keys in bulk. Manual syncs take a token from
 *   three buckets at once (connection, project, user; all or none); so do
 *   credential writes that want a sync at once (takeManualSync).
 * - Failed authentications of the HTTP API and OAuth callbacks with an
 *   unknown state, per request source and per key prefix (see http.ts).
 *
 * A missing bucket is a full one, so buckets that refilled are deleted by
 * a cron (deleteRefilledBuckets): the table holds only buckets in use.
 */
import { defineRateLimits, resetRateLimit } from "convex-helpers/server/rateLimit";
import { v, type ConvexError, type Infer } from "convex/values";
import { internal } from "../_generated/api";
import type { Id } from "../_generated/dataModel";
import { internalMutation, type MutationCtx } from "../_generated/server";
import { appError, type AppErrorData } from "../errors";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

const LIMITS = {
  /** connections.syncMetrics, per connection: a burst of 6, then one every 10 s. */
  manualSync: { kind: "token bucket", rate: 6, period: MINUTE },
  /** connections.syncMetrics, per project, whatever the connection: a burst of 12, then one every 5 s. */
  manualSyncProject: { kind: "token bucket", rate: 12, period: MINUTE },
  /** connections.syncMetrics, per user, whatever the project: a burst of 12, then one every 5 s. */
  manualSyncUser: { kind: "token bucket", rate: 12, period: MINUTE },
  /** ai.generateInsight, per user: a burst of 5, then 20 an hour. */
  aiInsight: { kind: "token bucket", rate: 20, period: HOUR, capacity: 5 },
  /** ai.verifyKey, per user: a burst of 5, then 10 an hour. */
  aiKeyCheck: { kind: "token bucket", rate: 10, period: HOUR, capacity: 5 },
  /** Failed HTTP API authentications per source (client IP as Convex reports it): a burst of 20, then 10 a minute. */
  apiAuthFailureBySource: { kind: "token bucket", rate: 10, period: MINUTE, capacity: 20 },
  /** Failed HTTP API authentications per platform key prefix (http.ts keyPrefixBucket): a burst of 20, then 10 a minute. */
  apiAuthFailureByPrefix: { kind: "token bucket", rate: 10, period: MINUTE, capacity: 20 },
  /** /oauth/callback requests with a well-formed but unknown state, per source: a burst of 20, then 10 a minute. */
  oauthCallbackFailureBySource: { kind: "token bucket", rate: 10, period: MINUTE, capacity: 20 },
} as const;
type LimitName = keyof typeof LIMITS;

const limiter = defineRateLimits(LIMITS);

/** Capacity of a bucket: its burst. */
function capacityOf(name: LimitName): number {
  const config: { rate: number; capacity?: number } = LIMITS[name];
  return config.capacity ?? config.rate;
}

export const rateLimitNameValidator = v.union(
  v.literal("manualSync"),
  v.literal("manualSyncProject"),
  v.literal("manualSyncUser"),
  v.literal("aiInsight"),
  v.literal("aiKeyCheck"),
);
export type RateLimitName = Infer<typeof rateLimitNameValidator>;

/** What a bucket is keyed by, for the action builders (actionBuilders.ts): the target connection, its project, or the caller. */
export const rateLimitScopeValidator = v.union(v.literal("connection"), v.literal("project"), v.literal("user"));

/** One bucket an action takes a token from: its name and what it is keyed by. */
export const rateLimitRuleValidator = v.object({ name: rateLimitNameValidator, per: rateLimitScopeValidator });
export type RateLimitRule = Infer<typeof rateLimitRuleValidator>;

/** The buckets of a manual sync (connections.syncMetrics): per connection, per project and per user. */
export const MANUAL_SYNC_LIMITS: readonly RateLimitRule[] = [
  { name: "manualSync", per: "connection" },
  { name: "manualSyncProject", per: "project" },
  { name: "manualSyncUser", per: "user" },
];

/** The failed-authentication limits, for tests and docs: rate, period and burst of each. */
export const AUTH_FAILURE_LIMITS = {
  apiAuthFailureBySource: LIMITS.apiAuthFailureBySource,
  apiAuthFailureByPrefix: LIMITS.apiAuthFailureByPrefix,
  oauthCallbackFailureBySource: LIMITS.oauthCallbackFailureBySource,
};

/** Whole seconds from `now` until `until`, at least 1: what a client waits (HTTP Retry-After, messages). */
export function retryAfterSeconds(until: number, now = Date.now()): number {
  return Math.max(1, Math.ceil((until - now) / 1000));
}

/**
 * The one RATE_LIMITED error: `what` went too fast, try again at `retryAt`
 * (ms since the epoch; whole milliseconds for the client). Every refusal
 * with that code is made here, so the dashboard always gets `retryAt` and
 * the same message's shape.
 */
export function rateLimited(retryAt: number, what: string): ConvexError<AppErrorData> {
  const at = Math.ceil(retryAt);
  return appError("RATE_LIMITED", `${what}; try again in ${retryAfterSeconds(at)} s`, { retryAt: at });
}

/** Takes one token of `name` for `key`; RATE_LIMITED (with when to retry) when none is left. */
export async function consumeRateLimit(ctx: MutationCtx, name: RateLimitName, key: string): Promise<void> {
  const { ok, retryAt } = await limiter.rateLimit(ctx, { name, key });
  // retryAt is the limiter's own answer.
  if (!ok) throw rateLimited(retryAt ?? Date.now(), "Too many requests");
}

/**
 * Forgets the manual-sync buckets (MANUAL_SYNC_LIMITS) keyed by a
 * connection or project being deleted, through the library's reset: its
 * rows are the library's to read and write, never this project's.
 */
export async function forgetBucketsOf(
  ctx: MutationCtx,
  target: { connectionId: Id<"connections"> } | { projectId: Id<"projects"> },
): Promise<void> {
  const [per, key] = "connectionId" in target ? (["connection", target.connectionId] as const) : (["project", target.projectId] as const);
  for (const rule of MANUAL_SYNC_LIMITS) if (rule.per === per) await limiter.resetRateLimit(ctx, { name: rule.name, key });
}

/** consumeRateLimit for actions. */
export const consume = internalMutation({
  args: { name: rateLimitNameValidator, key: v.string() },
  returns: v.null(),
  handler: async (ctx, { name, key }) => {
    await consumeRateLimit(ctx, name, key);
    return null;
  },
});

/**
 * Takes a manual-sync token from each of the connection's, the project's and
 * the user's buckets if all three have one (all or none), without throwing:
 * true when taken. Credential writes use it to decide whether the new
 * credentials may be tried at once or wait for the next scheduled slot.
 */
export async function takeManualSync(
  ctx: MutationCtx,
  keys: { connectionId: Id<"connections">; projectId: Id<"projects">; userId: Id<"users"> },
): Promise<boolean> {
  const buckets = [
    { name: "manualSync", key: keys.connectionId },
    { name: "manualSyncProject", key: keys.projectId },
    { name: "manualSyncUser", key: keys.userId },
  ] as const;
  for (const bucket of buckets) if (!(await limiter.checkRateLimit(ctx, bucket)).ok) return false;
  for (const bucket of buckets) await limiter.rateLimit(ctx, bucket);
  return true;
}

/**
 * Whether a request from `source` presenting a key with bucket `prefix`
 * (null: not shaped like a platform key, no prefix bucket) is refused
 * before its key is looked at, and until when (ms since the epoch), or null
 * to go on:
 * - the source has no failure left: refused until it has one;
 * - the key's prefix has no failure left: refused unless the source is clean
 *   (a full bucket: no failure recently), until the source is clean again.
 * So a client sending a valid key from its own address is never refused
 * because of others' failures, however many of them target its prefix.
 */
export async function authThrottledUntil(ctx: MutationCtx, source: string, prefix: string | null): Promise<number | null> {
  const sourceCheck = await limiter.checkRateLimit(ctx, { name: "apiAuthFailureBySource", key: source });
  if (!sourceCheck.ok) return sourceCheck.retryAt ?? Date.now();
  if (prefix === null) return null;
  const prefixCheck = await limiter.checkRateLimit(ctx, { name: "apiAuthFailureByPrefix", key: prefix });
  if (prefixCheck.ok) return null;
  const clean = await limiter.checkRateLimit(ctx, {
    name: "apiAuthFailureBySource",
    key: source,
    count: capacityOf("apiAuthFailureBySource"),
  });
  return clean.ok ? null : (clean.retryAt ?? Date.now());
}

/**
 * Records one failed authentication against the source's bucket and, for a
 * token shaped like a platform key, its prefix's bucket. Tokens of any other
 * shape share no bucket: a flood of them writes only per-source documents.
 */
export async function recordAuthFailure(ctx: MutationCtx, source: string, prefix: string | null): Promise<void> {
  await limiter.rateLimit(ctx, { name: "apiAuthFailureBySource", key: source });
  if (prefix !== null) await limiter.rateLimit(ctx, { name: "apiAuthFailureByPrefix", key: prefix });
}

/**
 * Counts one OAuth callback with an unknown state against its source and
 * returns until when the source is refused (its bucket was empty), or null.
 */
export async function recordOAuthCallbackFailure(ctx: MutationCtx, source: string): Promise<number | null> {
  const { ok, retryAt } = await limiter.rateLimit(ctx, { name: "oauthCallbackFailureBySource", key: source });
  return ok ? null : (retryAt ?? Date.now());
}

/** Buckets one cleanup mutation looks at. */
export const CLEANUP_BATCH_SIZE = 500;

/**
 * Deletes buckets that have refilled (a full bucket and a missing one mean
 * the same to the library, so nothing changes for anyone), in batches of
 * CLEANUP_BATCH_SIZE, continuing in another mutation until the table was
 * walked. A bucket is full when the library would let its whole capacity be
 * taken now (checkRateLimit with count = capacity); the check and the
 * delete are one transaction, so a token taken meanwhile keeps the bucket.
 * Buckets of names no longer defined are deleted too. Run by a cron
 * (crons.ts) every 10 minutes.
 */
export const deleteRefilledBuckets = internalMutation({
  args: { cursor: v.optional(v.union(v.string(), v.null())) },
  returns: v.object({ deleted: v.number(), kept: v.number() }),
  handler: async (ctx, { cursor = null }) => {
    const page = await ctx.db.query("rateLimits").paginate({ cursor, numItems: CLEANUP_BATCH_SIZE });
    let deleted = 0;
    for (const bucket of page.page) {
      const name = bucket.name as LimitName;
      const known = Object.hasOwn(LIMITS, name);
      const key = bucket.key;
      if (known && !(await limiter.checkRateLimit(ctx, { name, key, count: capacityOf(name) })).ok) continue;
      await resetRateLimit(ctx, { name: bucket.name, key });
      deleted++;
    }
    if (!page.isDone) await ctx.scheduler.runAfter(0, internal.access.rateLimits.deleteRefilledBuckets, { cursor: page.continueCursor });
    return { deleted, kept: page.page.length - deleted };
  },
});
