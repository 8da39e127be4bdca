/**
 * When a connection is first synced after a user act that wants it tried
 * (new or updated credentials, resuming it): at once (the cron's next run,
 * within a minute) if the user's manual-sync allowance has a token for it
 * (access/rateLimits.ts takeManualSync: the connection's, project's and user's
 * buckets, all or none), else at the next scheduled slot. So such acts never
 * sync more often than manual syncs may.
 */
import type { Id } from "../_generated/dataModel";
import type { MutationCtx } from "../_generated/server";
import { takeManualSync } from "../access/rateLimits";
import { nextSyncSlot } from "./policy";

export async function firstSyncAt(
  ctx: MutationCtx,
  keys: { connectionId: Id<"connections">; projectId: Id<"projects">; userId: Id<"users"> },
  now: number,
): Promise<number> {
  return (await takeManualSync(ctx, keys)) ? now : nextSyncSlot(now);
}
