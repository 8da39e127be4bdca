/**
 * Retention: metric points, their rollups (metricHistory/rollups.ts; by the metrics
 * retention, aged by bucket start) and audit entries older than their retention are
 * deleted by a daily cron (crons.ts), oldest first, RETENTION_BATCH_SIZE rows
 * per mutation, each batch scheduling the next until none is left. Rows are
 * aged by when they were stored (_creationTime, Convex's built-in index), so
 * no extra index is needed. Everything newer stays readable as before (the
 * HTTP API, insights, auditLog.list).
 */
import { v } from "convex/values";
import { internal } from "../_generated/api";
import { internalMutation } from "../_generated/server";
import { env } from "../env";
import { envNumber } from "../lib/envNumber";

/** Default age (days) after which metric points are deleted; METRICS_RETENTION_DAYS overrides it. */
export const DEFAULT_METRICS_RETENTION_DAYS = 90;
/** Default age (days) after which audit entries are deleted; AUDIT_RETENTION_DAYS overrides it. */
export const DEFAULT_AUDIT_RETENTION_DAYS = 365;
/** Rows one batch reads and deletes. */
export const RETENTION_BATCH_SIZE = 1000;

const DAY = 24 * 60 * 60 * 1000;

const retainedTableValidator = v.union(v.literal("metrics"), v.literal("metricRollups"), v.literal("auditLog"));
type RetainedTable = typeof retainedTableValidator.type;

/** Days from `envName` if it is a positive number, else `fallback`. */
function retentionDays(envName: string, fallback: number): number {
  return envNumber(env[envName], fallback, { above: 0 });
}

/** The retention of `table` in ms, from its environment variable or default. */
export function retentionMs(table: RetainedTable): number {
  return table === "metrics" || table === "metricRollups"
    ? retentionDays("METRICS_RETENTION_DAYS", DEFAULT_METRICS_RETENTION_DAYS) * DAY
    : retentionDays("AUDIT_RETENTION_DAYS", DEFAULT_AUDIT_RETENTION_DAYS) * DAY;
}

/** Starts one purge per table, each with its cutoff fixed now (the daily cron). */
export const start = internalMutation({
  args: {},
  returns: v.null(),
  handler: async (ctx) => {
    const now = Date.now();
    for (const table of ["metrics", "metricRollups", "auditLog"] as const) {
      await ctx.scheduler.runAfter(0, internal.jobs.retention.purgeBatch, { table, before: now - retentionMs(table) });
    }
    return null;
  },
});

/**
 * Deletes up to RETENTION_BATCH_SIZE rows of `table` stored before `before`,
 * oldest first, and schedules the next batch when it found a full one.
 */
export const purgeBatch = internalMutation({
  args: { table: retainedTableValidator, before: v.number() },
  returns: v.object({ deleted: v.number() }),
  handler: async (ctx, { table, before }) => {
    let deleted: number;
    if (table === "metricRollups") {
      const rows = await ctx.db
        .query(table)
        .withIndex("by_start", (q) => q.lt("start", before))
        .take(RETENTION_BATCH_SIZE);
      for (const row of rows) await ctx.db.delete(table, row._id);
      deleted = rows.length;
    } else {
      const rows = await ctx.db
        .query(table)
        .withIndex("by_creation_time", (q) => q.lt("_creationTime", before))
        .take(RETENTION_BATCH_SIZE);
      for (const row of rows) await ctx.db.delete(table, row._id);
      deleted = rows.length;
    }
    if (deleted === RETENTION_BATCH_SIZE) {
      await ctx.scheduler.runAfter(0, internal.jobs.retention.purgeBatch, { table, before });
    }
    return { deleted };
  },
});
