/**
 * The one batch runner's row reading: a batch's rows within Convex's
 * per-transaction limits (rows, and bytes as Convex counts them), and the
 * state of a self-scheduling batch chain. Used by the re-encryption job's
 * batches and by status's inventory pages.
 */
import { getDocumentSize } from "convex/values";
import type { GenericDocument } from "convex/server";
import type { Id } from "../_generated/dataModel";
import type { QueryCtx } from "../_generated/server";
import type { BatchState } from "./validators";

/** Rows a batch's first page reads, before it knows how large this table's rows are. */
export const FIRST_PAGE_ROWS = 16;
/** Most rows one page reads (one index range read). */
export const MAX_PAGE_ROWS = 256;
/** Smallest byte budget a resume halves to. */
export const MIN_BYTE_BUDGET = 256 * 1024;

/** How much one batch may read: rows, and bytes as Convex counts them (getDocumentSize). */
export interface BatchBudget {
  rows: number;
  bytes: number;
}

/**
 * Reads rows page by page after a cursor within row and byte budgets; pages are sized from the
 * largest row seen (times `bytesPerRow`: 2 when rows are rewritten, as a patch reads the document
 * again). The caller counts `handled`, and adds to `bytes` what its writes read.
 */
export class BudgetedRowReader<Row extends { doc: GenericDocument }, Cursor> {
  bytes = 0;
  handled = 0;
  /** True once a page came back short: nothing after the last row read. */
  exhausted = false;
  #largestRow = 0;
  #cursor: Cursor | undefined;
  #pending: Row[] = [];

  constructor(
    private readonly readPage: (after: Cursor | undefined, limit: number) => Promise<Row[]>,
    private readonly positionOf: (row: Row) => Cursor,
    start: Cursor | undefined,
    private readonly budget: BatchBudget,
    private readonly bytesPerRow: number,
  ) {
    this.#cursor = start;
  }

  /** Whether the budgets allow handling another row after `handled` rows (the first row always fits). */
  #hasRoom(): boolean {
    return this.handled === 0 || (this.handled < this.budget.rows && this.bytes < this.budget.bytes);
  }

  /** The next row to handle with its size, or null when the table is done or a budget is spent. */
  async next(): Promise<{ row: Row; size: number } | null> {
    if (!this.#hasRoom()) return null;
    if (this.#pending.length === 0) {
      if (this.exhausted) return null;
      const rowsLeft = this.budget.rows - this.handled;
      const bytesLeft = Math.max(0, this.budget.bytes - this.bytes);
      const bySize = this.#largestRow === 0 ? FIRST_PAGE_ROWS : Math.floor(bytesLeft / (this.bytesPerRow * this.#largestRow));
      const pageRows = Math.max(1, Math.min(MAX_PAGE_ROWS, rowsLeft, bySize));
      this.#pending = await this.readPage(this.#cursor, pageRows);
      if (this.#pending.length < pageRows) this.exhausted = true;
      for (const row of this.#pending) {
        const size = getDocumentSize(row.doc);
        this.bytes += size;
        this.#largestRow = Math.max(this.#largestRow, size);
      }
      const last = this.#pending.at(-1);
      if (last) this.#cursor = this.positionOf(last);
    }
    const row = this.#pending.shift();
    return row ? { row, size: getDocumentSize(row.doc) } : null;
  }

  /** Whether a row would fit the byte budget after it costs `extraBytes` more (a rewrite). */
  fits(extraBytes: number): boolean {
    return this.handled === 0 || this.bytes + extraBytes <= this.budget.bytes;
  }

  /** True when every row of the table after the cursor was handled. */
  get tableDone(): boolean {
    return this.exhausted && this.#pending.length === 0;
  }
}

/** State of the scheduled batch a job waits on ("none" when it has none, or it is gone). */
export async function scheduledBatchState(
  db: QueryCtx["db"],
  nextBatchId: Id<"_scheduled_functions"> | undefined,
): Promise<BatchState> {
  if (nextBatchId === undefined) return "none";
  const scheduled = await db.system.get("_scheduled_functions", nextBatchId);
  return scheduled?.state.kind ?? "none";
}
