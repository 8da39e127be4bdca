/**
 * Reading a project's metrics (members): the latest value of each metric
 * (metrics.latest; also the HTTP API through projects.latestMetrics) and
 * one metric's history at chart resolution (metrics.series, from the
 * rollups of metricHistory/rollups.ts). Reactive queries: a sync that stores new
 * points updates every open chart. Read costs are in docs/api.md.
 */
import { v } from "convex/values";
import type { Doc, Id } from "./_generated/dataModel";
import type { QueryCtx } from "./_generated/server";
import { appError } from "./errors";
import { connectionQuery, projectQuery } from "./access/builders";
import { MAX_CONNECTIONS, MAX_METRICS_PER_SYNC } from "./access/caps";
import { readSeries } from "./metricHistory/rollups";
import { connectionNameOf } from "./upgrade/defaults";

/** Longest metric name a sync stores (sync/run.ts storablePoints). */
const MAX_METRIC_NAME_LENGTH = 200;

/** One metric's latest point, with the connection it came from. */
export interface LatestPoint {
  connection: Doc<"connections">;
  name: string;
  value: number;
  timestamp: number;
}

/**
 * Each connection's latest sync: the points of its newest timestamp. A sync
 * writes all its points (at most MAX_METRICS_PER_SYNC, one per metric) with
 * one timestamp, so per connection this reads the newest point, then the
 * points with its timestamp: 1 + (metrics of that sync) documents, however
 * long the history. A metric the latest sync did not report is not served,
 * so the answer never depends on history.
 */
export async function latestPointsOf(ctx: QueryCtx, projectId: Id<"projects">): Promise<LatestPoint[]> {
  const connections = await ctx.db
    .query("connections")
    .withIndex("by_projectId", (q) => q.eq("projectId", projectId))
    .take(MAX_CONNECTIONS);
  const latest: LatestPoint[] = [];
  for (const connection of connections) {
    const newest = await ctx.db
      .query("metrics")
      .withIndex("by_connectionId_and_timestamp", (q) => q.eq("connectionId", connection._id))
      .order("desc")
      .first();
    if (!newest) continue;
    const rows = await ctx.db
      .query("metrics")
      .withIndex("by_connectionId_and_timestamp", (q) => q.eq("connectionId", connection._id).eq("timestamp", newest.timestamp))
      .take(MAX_METRICS_PER_SYNC);
    for (const { name, value, timestamp } of rows) latest.push({ connection, name, value, timestamp });
  }
  return latest;
}

const latestMetricValidator = v.object({
  connectionId: v.id("connections"),
  connectionName: v.string(),
  service: v.string(),
  name: v.string(),
  value: v.number(),
  /** When the sync that stored it ran (ms since the epoch). */
  timestamp: v.number(),
});

/**
 * The latest value of every metric of every connection of the project
 * (members): each connection's latest successful sync, with the
 * connection's name and service.
 */
export const latest = projectQuery({
  args: {},
  returns: v.array(latestMetricValidator),
  handler: async (ctx, { projectId }) => {
    const points = await latestPointsOf(ctx, projectId);
    return points.map(({ connection, name, value, timestamp }) => ({
      connectionId: connection._id,
      connectionName: connectionNameOf(connection),
      service: connection.service,
      name,
      value,
      timestamp,
    }));
  },
});

const seriesPointValidator = v.object({
  /** Time of the newest value in the bucket. */
  at: v.number(),
  /** The newest value in the bucket. */
  value: v.number(),
  /** Lowest and highest value stored in the bucket. */
  min: v.number(),
  max: v.number(),
});

/**
 * One metric of one connection over `from`..`to` (ms since the epoch),
 * members of its project: hourly points for ranges up to 20 days, daily
 * beyond (at most 500, MAX_SERIES_POINTS; a range longer than that many days
 * gets its newest ones), oldest first; buckets without data have no point.
 * Each point is the newest value of its bucket, so the last point is the
 * newest value of the bucket `to` falls in (possibly stored after `to`: a
 * chart ending now shows the latest value). Reads at most one rollup per point.
 */
export const series = connectionQuery({
  args: { name: v.string(), from: v.number(), to: v.number() },
  returns: v.object({
    resolution: v.union(v.literal("hour"), v.literal("day")),
    points: v.array(seriesPointValidator),
  }),
  handler: async (ctx, { connectionId, name, from, to }) => {
    if (!Number.isFinite(from) || !Number.isFinite(to) || from >= to) {
      throw appError("INVALID_ARGUMENT", "`from` must be a time before `to`", { field: "from" });
    }
    if (name.length === 0 || name.length > MAX_METRIC_NAME_LENGTH) {
      throw appError("INVALID_ARGUMENT", "Unknown metric name", { field: "name" });
    }
    return readSeries(ctx, connectionId, name, from, to);
  },
});
