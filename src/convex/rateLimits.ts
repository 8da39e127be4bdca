/**
 * Rate limits on public actions that call third-party services on a user's
 * behalf, so a caller can neither hammer a provider with one connection's
 * credentials nor use this deployment to test AI keys in bulk. Token buckets
 * from convex-helpers, stored in the rateLimits table.
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
  /** ai.generateInsight, per user: a burst of 5, then 20 an hour. */
  aiInsight: { kind: "token bucket", rate: 20, period: HOUR, capacity: 5 },
  /** ai.verifyKey, per user: a burst of 5, then 10 an hour. */
  aiKeyCheck: { kind: "token bucket", rate: 10, period: HOUR, capacity: 5 },
});

export const rateLimitNameValidator = v.union(v.literal("manualSync"), v.literal("aiInsight"), v.literal("aiKeyCheck"));
export type RateLimitName = Infer<typeof rateLimitNameValidator>;

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
