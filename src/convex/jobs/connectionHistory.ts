/**
 * Deleting a removed connection's history (connections.remove): its metric
 * points, then its rollups, HISTORY_ROWS_PER_BATCH rows per mutation (the
 * batch runner, jobs/batches.ts). connections.remove runs the first batch;
 * the others run as `connections:deleteMetrics`, the path such batches have
 * always been scheduled under.
 */
import { internal } from "../_generated/api";
import type { Id } from "../_generated/dataModel";
import type { MutationCtx } from "../_generated/server";
import { rollupsOfConnection } from "../metricHistory/rollups";
import { runBatch } from "./batches";

/**
 * History rows (metric points and rollups) one batch reads and deletes: 1,000 documents read and
 * written at most, as many as a batch of points and one of rollups deleted before (500 each).
 */
export const HISTORY_ROWS_PER_BATCH = 1000;

type HistoryRow = { table: "metrics"; _id: Id<"metrics"> } | { table: "metricRollups"; _id: Id<"metricRollups"> };

/** Up to `limit` history rows of a connection: its metric points first, then its rollups. */
async function historyRows(ctx: MutationCtx, connectionId: Id<"connections">, limit: number): Promise<HistoryRow[]> {
  const points = await ctx.db
    .query("metrics")
    .withIndex("by_connectionId_and_timestamp", (q) => q.eq("connectionId", connectionId))
    .take(limit);
  const rows: HistoryRow[] = points.map((point) => ({ table: "metrics", _id: point._id }));
  if (rows.length === limit) return rows;
  const rollups = await rollupsOfConnection(ctx, connectionId, limit - rows.length);
  return [...rows, ...rollups.map((rollup) => ({ table: "metricRollups" as const, _id: rollup._id }))];
}

/** One batch of deleting a removed connection's history; the next is scheduled while batches are full. */
export async function deleteHistoryBatch(ctx: MutationCtx, connectionId: Id<"connections">): Promise<void> {
  await runBatch(ctx, {
    size: HISTORY_ROWS_PER_BATCH,
    read: (limit) => historyRows(ctx, connectionId, limit),
    handle: (row) => ctx.db.delete(row.table, row._id),
    next: internal.connections.deleteMetrics,
    continueAfter: () => ({ connectionId }),
  });
}
