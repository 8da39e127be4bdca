/**
 * Rate limits on public actions that call third-party services on a user's
 * behalf, so a caller can neither hammer a provider with one connection's
 * credentials nor use this deployment to test AI keys in bulk; and on failed
 * authentications of the HTTP API. Token buckets from convex-helpers, stored
 * in the rateLimits table.
 *
 * Manual syncs take a token from three buckets at once (connection, project,
 * user; all or none): the project and user buckets do not multiply with the
 * number of connections, and removing and re-creating a connection, which
 * gives it a fresh connection bucket, leaves them as they were.
 */
import { defineRateLimits } from "convex-helpers/server/rateLimit";
import { v, type Infer } from "convex/values";
import { internalMutation, type MutationCtx, type QueryCtx } from "./_generated/server";
import { appError } from "./errors";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

const { rateLimit } = defineRateLimits({
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
});

export const rateLimitNameValidator = v.union(
  v.literal("manualSync"),
  v.literal("manualSyncProject"),
  v.literal("manualSyncUser"),
  v.literal("aiInsight"),
  v.literal("aiKeyCheck"),
);
export type RateLimitName = Infer<typeof rateLimitNameValidator>;

/** What a bucket is keyed by, for the action builders (functions.ts): the target connection, its project, or the caller. */
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

/** Takes one token of `name` for `key`; RATE_LIMITED (with when to retry) when none is left. */
export async function consumeRateLimit(ctx: MutationCtx, name: RateLimitName, key: string): Promise<void> {
  const { ok, retryAt } = await rateLimit(ctx, { name, key });
  if (!ok) {
    // retryAt is the limiter's own answer (ms since the epoch); whole milliseconds for the client.
    const at = Math.ceil(retryAt ?? Date.now());
    const seconds = Math.max(1, Math.ceil((at - Date.now()) / 1000));
    throw appError("RATE_LIMITED", `Too many requests; try again in ${seconds} s`, { retryAt: at });
  }
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
 * Failed authentications on the HTTP API (http.ts), per request source and
 * per key prefix, and OAuth callbacks with an unknown state, per source. Only failures take tokens; a request that authenticates
 * never touches these buckets. See http.ts for how they are applied.
 */
export const AUTH_FAILURE_LIMITS = {
  /** Per source (client IP as Convex reports it): a burst of 20 failures, then 10 a minute. */
  apiAuthFailureBySource: { kind: "token bucket", rate: 10, period: MINUTE, capacity: 20 },
  /** Per key prefix (see http.ts keyPrefixBucket): a burst of 20 failures, then 10 a minute. */
  apiAuthFailureByPrefix: { kind: "token bucket", rate: 10, period: MINUTE, capacity: 20 },
  /** /oauth/callback requests with a well-formed but unknown state, per source: a burst of 20, then 10 a minute. */
  oauthCallbackFailureBySource: { kind: "token bucket", rate: 10, period: MINUTE, capacity: 20 },
} as const;
export type AuthFailureLimit = keyof typeof AUTH_FAILURE_LIMITS;

const authFailures = defineRateLimits(AUTH_FAILURE_LIMITS);

/** A token bucket as stored by convex-helpers (rateLimits table): tokens left at time `ts`. */
export const bucketStateValidator = v.object({ value: v.number(), ts: v.number() });
export type BucketState = Infer<typeof bucketStateValidator>;

/**
 * The stored state of one auth-failure bucket, or null when it has none
 * (full). Reads only, and no clock: safe in a cacheable query; judge it with
 * tokensAt in the caller, where reading the clock is fine.
 */
export async function readBucket(ctx: QueryCtx, name: AuthFailureLimit, key: string): Promise<BucketState | null> {
  const row = await ctx.db
    .query("rateLimits")
    .withIndex("name", (q) => q.eq("name", name).eq("key", key))
    .unique();
  return row && { value: row.value, ts: row.ts };
}

/** Tokens in a bucket of `name` at `now`: its stored value refilled at the limit's rate, up to its capacity. */
export function tokensAt(name: AuthFailureLimit, state: BucketState | null, now: number): number {
  const { rate, period, capacity } = AUTH_FAILURE_LIMITS[name];
  if (!state) return capacity;
  return Math.min(capacity, state.value + (Math.max(0, now - state.ts) * rate) / period);
}

/** When a bucket of `name` holding `tokens` at `now` will hold `target` tokens. */
function timeToReach(name: AuthFailureLimit, tokens: number, target: number, now: number): number {
  const { rate, period } = AUTH_FAILURE_LIMITS[name];
  return now + (Math.max(0, target - tokens) * period) / rate;
}

/**
 * Whether a request from a source with these buckets is refused before its
 * key is looked at, and until when (ms since the epoch), or null to go on:
 * - the source has no failure left: refused until it has one;
 * - the key's prefix has no failure left: refused unless the source is clean
 *   (a full bucket: no failure recently), until the source is clean again.
 * So a client sending a valid key from its own address is never refused
 * because of others' failures, however many of them target its prefix.
 */
export function authThrottledUntil(source: BucketState | null, prefix: BucketState | null, now: number): number | null {
  const sourceTokens = tokensAt("apiAuthFailureBySource", source, now);
  if (sourceTokens < 1) return timeToReach("apiAuthFailureBySource", sourceTokens, 1, now);
  const sourceCapacity = AUTH_FAILURE_LIMITS.apiAuthFailureBySource.capacity;
  if (tokensAt("apiAuthFailureByPrefix", prefix, now) < 1 && sourceTokens < sourceCapacity) {
    return timeToReach("apiAuthFailureBySource", sourceTokens, sourceCapacity, now);
  }
  return null;
}

/** Records one failed authentication against the source's and the prefix's buckets (an empty bucket stays empty). */
export async function recordAuthFailure(ctx: MutationCtx, source: string, prefix: string): Promise<void> {
  await authFailures.rateLimit(ctx, { name: "apiAuthFailureBySource", key: source });
  await authFailures.rateLimit(ctx, { name: "apiAuthFailureByPrefix", key: prefix });
}

/** Until when (ms since the epoch) a source whose bucket of `name` is empty is refused, or null to go on. */
export function sourceThrottledUntil(name: AuthFailureLimit, state: BucketState | null, now: number): number | null {
  const tokens = tokensAt(name, state, now);
  return tokens < 1 ? timeToReach(name, tokens, 1, now) : null;
}

/** Records one OAuth callback with an unknown state against its source's bucket (an empty bucket stays empty). */
export async function recordOAuthCallbackFailure(ctx: MutationCtx, source: string): Promise<void> {
  await authFailures.rateLimit(ctx, { name: "oauthCallbackFailureBySource", key: source });
}
