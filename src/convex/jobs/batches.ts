/**
 * The one batch runner of the background jobs that work through rows in
 * pages (retention, removing a project, the rollup backfill): each batch is
 * one mutation that reads at most `size` rows by index, handles each, and,
 * when it read a full page (more may be left), schedules the next batch of
 * the same job at once, with the arguments that continue after the last row
 * it read. A batch that reads fewer rows than `size` is the job's last.
 *
 * A page of `size` rows costs `size` document reads plus what `handle` does:
 * each job picks `size` so a batch stays within Convex's per-transaction
 * limits (16,000 writes, 4,096 database queries, 32,000 documents read).
 */
import type { FunctionReference, OptionalRestArgs } from "convex/server";
import type { MutationCtx } from "../_generated/server";

/** The arguments of a job's batch mutation. */
type BatchArgs = Record<string, unknown>;

export interface Batch<Row, Args extends BatchArgs> {
  /** Most rows one batch reads (and handles). */
  size: number;
  /** Reads up to `limit` rows to handle, in the job's order. */
  read: (limit: number) => Promise<Row[]>;
  /** Handles one row (deletes it, folds it, ...). */
  handle: (row: Row) => Promise<void>;
  /** The job's batch mutation, scheduled with `continueAfter(last row)` when the page was full. */
  next: FunctionReference<"mutation", "internal", Args>;
  continueAfter: (last: Row) => Args;
}

/** Runs one batch; `read` is the number of rows it read and handled, `done` whether no batch follows. */
export async function runBatch<Row, Args extends BatchArgs>(
  ctx: MutationCtx,
  batch: Batch<Row, Args>,
): Promise<{ read: number; done: boolean }> {
  const rows = await batch.read(batch.size);
  for (const row of rows) await batch.handle(row);
  const done = rows.length < batch.size;
  if (!done) {
    const args = [batch.continueAfter(rows[rows.length - 1]!)] as OptionalRestArgs<typeof batch.next>;
    await ctx.scheduler.runAfter(0, batch.next, ...args);
  }
  return { read: rows.length, done };
}
