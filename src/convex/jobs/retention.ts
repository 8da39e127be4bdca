/**
 * Retention: metric points, their rollups (metricHistory/rollups.ts; by the metrics
 * retention, aged by bucket start) and audit entries older than their retention are
 * deleted by a daily cron (crons.ts), oldest first, RETENTION_BATCH_SIZE rows
 * per mutation, each batch scheduling the next until none is left (the batch
 * runner, jobs/batches.ts). Rows are
 * aged by when they were stored (_creationTime, Convex's built-in index), so
 * no extra index is needed. Everything newer stays readable as before (the
 * HTTP API, insights, auditLog.list).
 */
import { v } from "convex/values";
import { internal } from "../_generated/api";
import type { Id } from "../_generated/dataModel";
import { internalMutation, type MutationCtx } from "../_generated/server";
import { env } from "../env";
import { envNumber } from "../lib/envNumber";
import { runBatch } from "./batches";

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
 * Up to `limit` rows of `table` older than `before`, oldest first: rollups
 * by bucket start, points and audit entries by when they were stored.
 */
function expiredRows(ctx: MutationCtx, table: RetainedTable, before: number, limit: number): Promise<{ _id: Id<RetainedTable> }[]> {
  return table === "metricRollups"
    ? ctx.db.query(table).withIndex("by_start", (q) => q.lt("start", before)).take(limit)
    : ctx.db.query(table).withIndex("by_creation_time", (q) => q.lt("_creationTime", before)).take(limit);
}

/**
 * Deletes up to RETENTION_BATCH_SIZE rows of `table` older than `before`,
 * oldest first, and schedules the next batch when it found a full one (jobs/batches.ts).
 */
export const purgeBatch = internalMutation({
  args: { table: retainedTableValidator, before: v.number() },
  returns: v.object({ deleted: v.number() }),
  handler: async (ctx, { table, before }): Promise<{ deleted: number }> => {
    const { read } = await runBatch(ctx, {
      size: RETENTION_BATCH_SIZE,
      read: (limit) => expiredRows(ctx, table, before, limit),
      handle: (row) => ctx.db.delete(table, row._id),
      next: internal.jobs.retention.purgeBatch,
      continueAfter: () => ({ table, before }),
    });
    return { deleted: read };
  },
});
