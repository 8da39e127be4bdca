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
import { recordRollups } from "./rollups";

/** Raw points one backfill batch folds (each costs 2 index reads and 2 writes). */
export const BACKFILL_BATCH_SIZE = 300;

/**
 * Folds the raw points stored before rollups existed into rollups, oldest
 * first, BACKFILL_BATCH_SIZE points per mutation, each batch scheduling the
 * next. Operators run it once after deploying this version:
 * `npx convex run metricHistory/backfill:run`. Idempotent, so it can run again
 * (or while syncs run); points of connections removed meanwhile are skipped.
 */
export const run = internalMutation({
  args: {
    /** _creationTime of the last point folded (absent: start from the oldest). */
    after: v.optional(v.number()),
    batchSize: v.optional(v.number()),
  },
  returns: v.object({ folded: v.number(), done: v.boolean() }),
  handler: async (ctx, { after, batchSize = BACKFILL_BATCH_SIZE }) => {
    const points = await ctx.db
      .query("metrics")
      .withIndex("by_creation_time", (q) => (after === undefined ? q : q.gt("_creationTime", after)))
      .take(batchSize);
    const exists = new Map<Id<"connections">, boolean>();
    let folded = 0;
    for (const point of points) {
      if (!exists.has(point.connectionId)) exists.set(point.connectionId, (await ctx.db.get("connections", point.connectionId)) !== null);
      if (!exists.get(point.connectionId)) continue;
      await recordRollups(ctx, point, [point], point.timestamp);
      folded++;
    }
    const done = points.length < batchSize;
    if (!done) {
      await ctx.scheduler.runAfter(0, internal.metricHistory.backfill.run, { after: points[points.length - 1]!._creationTime, batchSize });
    }
    return { folded, done };
  },
});
