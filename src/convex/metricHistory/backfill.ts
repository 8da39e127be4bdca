/**
 * The backfill of metric rollups (rollups.ts): folds the raw points stored
 * before rollups existed, run once by operators after deploying the version
 * that added rollups (docs/integrations.md, "Metric history"). It was
 * `metricRollups:backfill` before issue 17; that path forwards here for one
 * release (docs/architecture.md, "Deploying").
 */
import { v } from "convex/values";
import { internal } from "../_generated/api";
import type { Id } from "../_generated/dataModel";
import { internalMutation } from "../_generated/server";
import { appError } from "../errors";
import { runBatch } from "../jobs/batches";
import { recordRollups } from "./rollups";

/** Raw points one backfill batch folds by default (each costs 2 index reads and 2 writes). */
export const BACKFILL_BATCH_SIZE = 300;
/**
 * The largest batchSize accepted: 1,000 points cost 2,000 index reads, 2,000
 * writes and up to 1,000 connection reads, within one mutation's limits
 * (4,096 database queries, 16,000 writes, 32,000 documents read).
 */
export const MAX_BACKFILL_BATCH_SIZE = 1000;

/**
 * Folds the raw points stored before rollups existed into rollups, oldest
 * first, batchSize points per mutation (BACKFILL_BATCH_SIZE unless given,
 * at most MAX_BACKFILL_BATCH_SIZE), each batch scheduling the next (the
 * batch runner, jobs/batches.ts). Operators run it once after deploying the
 * version that added rollups: `npx convex run metricHistory/backfill:run`.
 *
 * It folds only the points that existed when it started: up to `through`,
 * the _creationTime of the newest point its first batch found. Points
 * stored since were folded by the sync that stored them, so the job ends
 * even while syncs keep writing. Idempotent, so it can
 * run again (or while syncs run); points of connections removed meanwhile
 * are skipped. A batchSize that is not a whole number from 1 to
 * MAX_BACKFILL_BATCH_SIZE is INVALID_ARGUMENT (field "batchSize"), before
 * anything is read.
 */
export const run = internalMutation({
  args: {
    /** _creationTime of the last point folded (absent: start from the oldest). */
    after: v.optional(v.number()),
    /** _creationTime of the newest point to fold (absent: the newest point when this batch runs). */
    through: v.optional(v.number()),
    batchSize: v.optional(v.number()),
  },
  returns: v.object({ folded: v.number(), done: v.boolean() }),
  handler: async (ctx, { after, through, batchSize = BACKFILL_BATCH_SIZE }): Promise<{ folded: number; done: boolean }> => {
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_BACKFILL_BATCH_SIZE) {
      throw appError("INVALID_ARGUMENT", `batchSize must be a whole number from 1 to ${MAX_BACKFILL_BATCH_SIZE}`, {
        field: "batchSize",
      });
    }
    const newest = through ?? (await ctx.db.query("metrics").withIndex("by_creation_time").order("desc").first())?._creationTime;
    if (newest === undefined) return { folded: 0, done: true };
    const exists = new Map<Id<"connections">, boolean>();
    let folded = 0;
    const { done } = await runBatch(ctx, {
      size: batchSize,
      read: (limit) =>
        ctx.db
          .query("metrics")
          .withIndex("by_creation_time", (q) =>
            after === undefined ? q.lte("_creationTime", newest) : q.gt("_creationTime", after).lte("_creationTime", newest),
          )
          .take(limit),
      handle: async (point) => {
        if (!exists.has(point.connectionId)) exists.set(point.connectionId, (await ctx.db.get("connections", point.connectionId)) !== null);
        if (!exists.get(point.connectionId)) return;
        await recordRollups(ctx, point, [point], point.timestamp);
        folded++;
      },
      next: internal.metricHistory.backfill.run,
      continueAfter: (last) => ({ after: last._creationTime, through: newest, batchSize }),
    });
    return { folded, done };
  },
});
