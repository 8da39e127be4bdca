/**
 * Metric history at chart resolution. Each sync stores its raw points
 * (sync/outcomes.ts) and, in the same transaction, folds each point into the
 * hourly and the daily rollup of its (connection, metric): the bucket's
 * newest value (`last`, `lastAt`) and its range (`min`, `max`). Charts read
 * rollups, never raw points, so a 90-day chart of 15-minute syncs (8,640 raw
 * points) reads at most 91 daily rollups (metrics.series).
 *
 * Folding is idempotent (newest value wins; min and max), so replaying a
 * point changes nothing: the backfill (backfill.ts) folds the raw points stored before
 * rollups existed, safely next to running syncs. Rollups are trimmed by the
 * metrics retention, by bucket start (jobs/retention.ts), and deleted with their
 * connection (connections.remove, jobs/connectionHistory.ts) or project (jobs/projectRemoval.ts).
 */
import type { Doc, Id } from "../_generated/dataModel";
import type { MutationCtx, QueryCtx } from "../_generated/server";

export type RollupResolution = Doc<"metricRollups">["resolution"];

const HOUR = 60 * 60 * 1000;
const DAY = 24 * HOUR;

/** Length of each resolution's bucket, in ms (UTC hours and days). */
export const BUCKET_MS: Record<RollupResolution, number> = { hour: HOUR, day: DAY };

/** Most points metrics.series returns (and rollups it reads). */
export const MAX_SERIES_POINTS = 500;
/** Longest range charted hourly (480 hourly buckets, plus the one `from` falls in); longer ranges are daily. */
export const MAX_HOURLY_RANGE_MS = 20 * DAY;

/** The start of the bucket of `resolution` that `at` falls in. */
export function bucketStart(at: number, resolution: RollupResolution): number {
  const size = BUCKET_MS[resolution];
  return Math.floor(at / size) * size;
}

/** The resolution a chart of `from`..`to` is drawn at: hourly up to 20 days, daily beyond. */
export function seriesResolution(from: number, to: number): RollupResolution {
  return to - from <= MAX_HOURLY_RANGE_MS ? "hour" : "day";
}

/**
 * Folds the points one sync stored at `at` into their hourly and daily
 * rollups (called by sync/outcomes.ts recordSyncOutcomes, in the transaction that
 * inserts the raw points). Per point: 2 index reads and 2 writes.
 */
export async function recordRollups(
  ctx: MutationCtx,
  target: { connectionId: Id<"connections">; projectId: Id<"projects"> },
  points: readonly { name: string; value: number }[],
  at: number,
): Promise<void> {
  const { connectionId, projectId } = target;
  for (const { name, value } of points) {
    for (const resolution of ["hour", "day"] as const) {
      const start = bucketStart(at, resolution);
      const existing = await ctx.db
        .query("metricRollups")
        .withIndex("by_connectionId_and_name_and_resolution_and_start", (q) =>
          q.eq("connectionId", connectionId).eq("name", name).eq("resolution", resolution).eq("start", start),
        )
        .unique();
      if (!existing) {
        await ctx.db.insert("metricRollups", {
          connectionId,
          projectId,
          name,
          resolution,
          start,
          last: value,
          lastAt: at,
          min: value,
          max: value,
        });
        continue;
      }
      const newer = at >= existing.lastAt;
      await ctx.db.patch("metricRollups", existing._id, {
        last: newer ? value : existing.last,
        lastAt: newer ? at : existing.lastAt,
        min: Math.min(existing.min, value),
        max: Math.max(existing.max, value),
      });
    }
  }
}

/** One point of a chart: the newest value of a bucket at its time, and the bucket's range. */
export interface SeriesPoint {
  at: number;
  value: number;
  min: number;
  max: number;
}

/**
 * The chart of one metric of one connection over `from`..`to`: one point
 * per hourly or daily bucket that has data (seriesResolution), oldest first,
 * each the newest value stored in its bucket, so the last point is the
 * newest value of the bucket `to` falls in (its `at` may be after `to`; for
 * a chart ending now, the latest value). Reads at most MAX_SERIES_POINTS rollups
 * (the newest buckets of the range if it holds more).
 */
export async function readSeries(
  ctx: QueryCtx,
  connectionId: Id<"connections">,
  name: string,
  from: number,
  to: number,
): Promise<{ resolution: RollupResolution; points: SeriesPoint[] }> {
  const resolution = seriesResolution(from, to);
  const first = bucketStart(from, resolution);
  const rows = await ctx.db
    .query("metricRollups")
    .withIndex("by_connectionId_and_name_and_resolution_and_start", (q) =>
      q.eq("connectionId", connectionId).eq("name", name).eq("resolution", resolution).gte("start", first).lte("start", to),
    )
    .order("desc")
    .take(MAX_SERIES_POINTS);
  // The bucket `from` falls in may hold points before `from`: its newest value is still the chart's start.
  // The bucket `to` falls in is kept whole even when its newest value is after `to` (a rollup keeps
  // only that one): a chart ending now then shows each sync's value as it lands.
  const points = rows.reverse().map((row) => ({ at: row.lastAt, value: row.last, min: row.min, max: row.max }));
  return { resolution, points };
}

/** Up to `limit` rollups of a connection (every metric, both resolutions), by index. */
export function rollupsOfConnection(ctx: MutationCtx, connectionId: Id<"connections">, limit: number): Promise<Doc<"metricRollups">[]> {
  return ctx.db
    .query("metricRollups")
    .withIndex("by_connectionId_and_name_and_resolution_and_start", (q) => q.eq("connectionId", connectionId))
    .take(limit);
}
