/**
 * Rate limits on public actions that call third-party services on a user's
 * behalf, so a caller can neither hammer a provider with one connection's
 * credentials nor use this deployment to test AI keys in bulk. Token buckets
 * from convex-helpers, stored in the rateLimits table.
 *
 * Manual syncs take a token from three buckets at once (connection, project,
 * user; all or none): the project and user buckets do not multiply with the
 * number of connections, and removing and re-creating a connection, which
 * gives it a fresh connection bucket, leaves them as they were.
 */
import { defineRateLimits } from "convex-helpers/server/rateLimit";
import { v, type Infer } from "convex/values";
import { internalMutation, type MutationCtx } from "./_generated/server";
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
    const seconds = Math.max(1, Math.ceil(((retryAt ?? Date.now()) - Date.now()) / 1000));
    throw appError("RATE_LIMITED", `Too many requests; try again in ${seconds} s`);
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
