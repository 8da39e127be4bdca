/**
 * Master-key rotation and format migration, run by an operator with
 * `npx convex run keyRotation:rotate` (runbook: docs/key-rotation.md).
 *
 * `rotate` computes, once, the v2 and v1 ids of every configured master key
 * (two PBKDF2 runs per key) and stores them in the job. The job then walks
 * every table holding a secret in three phases, one self-scheduling
 * mutation (batch) at a time:
 * 1. scan: counts secrets by the key id in their header against the job's
 *    ids (no crypto, no writes) and refuses to go on when rows are under an
 *    unknown key while no OLD_MASTER_KEY is configured;
 * 2. rotate: brings every row to format v2 under the current key: v2 under
 *    a previous key is re-encrypted, v1 (under any key), legacy ciphertext
 *    and plaintext are migrated, plaintext API keys hashed; rows already v2
 *    under the current key are skipped without decrypting; a row no key
 *    decrypts is recorded in keyRotationFailures and left untouched;
 * 3. verify: scans headers again and counts anything left behind.
 *
 * Every batch is bounded by Convex's per-transaction limits, not by a fixed
 * row count: it reads rows in small pages until its row budget (up to
 * 1,000) or its byte budget (8 MiB of the 16 MiB a transaction may read,
 * counting a rewritten row twice: a patch reads the document again) is
 * spent, and a rotate batch also stops before exceeding its derivation
 * budget (PBKDF2 runs, ~30-37 ms each of the 1 s a mutation may compute,
 * counted by its keyring). A rotate batch derives the current key's root
 * (one run, also used to check that MASTER_ENCRYPTION_KEY did not change),
 * one root per previous key whose v2 values it meets, and one run per
 * (salt, key tried) for v1 and legacy values. The job's cursor is the index
 * position of the last row handled, so the next batch resumes exactly
 * there. A batch that throws (or exceeds a limit) rolls back as a whole;
 * running `rotate` again halves the derivation, row and byte budgets and
 * resumes the job from its cursor, so a chain that died from a limit
 * converges.
 */
import { paginationOptsValidator, paginationResultValidator } from "convex/server";
import { getDocumentSize, v } from "convex/values";
import { internal } from "./_generated/api";
import type { Doc, Id } from "./_generated/dataModel";
import { internalMutation, internalQuery, type MutationCtx, type QueryCtx } from "./_generated/server";
import { recordAudit } from "./audit";
import { appError } from "./errors";
import type { Keyring } from "./lib/keyring";
import {
  countShape,
  derivationsNeeded,
  emptyShapeCounts,
  positionOf,
  processRow,
  readRowsAfter,
  shapeOf,
  writesRow,
  type JobKeyIds,
  type RotationRow,
} from "./rotation/rows";
import { loadKeyring, loadKeyringForWrite, readRootSalt } from "./secrets";
import {
  rotationFailureFields,
  rotationJobStatusValidator,
  type RotationBatchState,
  type RotationCounts,
  type RotationCursor,
  type RotationPhase,
  type RotationStopReason,
  type RotationTable,
  type SecretShapeCounts,
} from "./validators";

/** A new job's row budget: the most rows one batch handles (each costs AES-GCM and a write, ≤ 16,000 writes). */
export const MAX_ROWS_PER_BATCH = 1000;

/**
 * A new job's byte budget: the most bytes one batch reads, half of Convex's
 * 16 MiB per transaction, leaving room for a page read past the budget and
 * for the job's own documents. Sizes are Convex's own (getDocumentSize).
 */
export const MAX_BYTES_PER_BATCH = 8 * 1024 * 1024;

/**
 * A new job's derivation budget: the most PBKDF2 runs one rotate batch
 * performs. PBKDF2 runs synchronously and counts toward Convex's 1 s of
 * code per mutation; at ~30-37 ms each, 8 leave a 3x margin. A batch always
 * handles at least one row, so a row needing more than what is left still
 * progresses.
 */
export const MAX_DERIVATIONS_PER_BATCH = 8;

/** Rows read by a batch's first page, before it knows how large this table's rows are. */
const FIRST_PAGE_ROWS = 16;
/** Most rows read by one page (one index range read). */
const MAX_PAGE_ROWS = 256;
/** Smallest byte budget a resume halves to. */
const MIN_BYTE_BUDGET = 256 * 1024;

/** How many failures keyRotation:status lists (all of them: keyRotation:failures). */
export const FAILURE_SAMPLE_SIZE = 20;

type Job = Doc<"keyRotationJobs">;
type Stage = { phase: RotationPhase; table: RotationTable };

const TABLES = ["connections", "aiKeys", "apiKeys"] as const satisfies readonly RotationTable[];

/** The stage after the current one, or null when the job is complete. A dry run skips verification. */
function nextStage(job: Job): Stage | null {
  const nextTable = TABLES[TABLES.indexOf(job.table) + 1];
  if (nextTable !== undefined) return { phase: job.phase, table: nextTable };
  if (job.phase === "scan") return { phase: "rotate", table: TABLES[0] };
  if (job.phase === "rotate" && !job.dryRun) return { phase: "verify", table: TABLES[0] };
  return null;
}

/** The job's per-batch budgets (jobs created before a budget was stored use the default). */
function budgetsOf(job: Job): { derivations: number; rows: number; bytes: number } {
  return {
    derivations: job.derivationBudget ?? MAX_DERIVATIONS_PER_BATCH,
    rows: job.rowBudget ?? MAX_ROWS_PER_BATCH,
    bytes: job.byteBudget ?? MAX_BYTES_PER_BATCH,
  };
}

/** The job's key ids (index 0: current key), or null for a job started before v1 ids were stored. */
function jobKeyIds(job: Job): JobKeyIds | null {
  if (job.currentV1KeyId === undefined || job.previousV1KeyIds === undefined) return null;
  return { v2: [job.currentKeyId, ...job.previousKeyIds], v1: [job.currentV1KeyId, ...job.previousV1KeyIds] };
}

function emptyCounts(): RotationCounts {
  return { scanned: 0, reEncrypted: 0, migrated: 0, alreadyCurrent: 0, failed: 0 };
}

/** Rows that still need attention after a rotation (anything not up to date). */
function outstanding(shapes: SecretShapeCounts): number {
  return shapes.rows - shapes.upToDate;
}

async function latestJob(ctx: QueryCtx): Promise<Job | null> {
  return ctx.db.query("keyRotationJobs").order("desc").first();
}

async function batchStateOf(ctx: QueryCtx, job: Job): Promise<RotationBatchState> {
  if (job.nextBatchId === undefined) return "none";
  const scheduled = await ctx.db.system.get("_scheduled_functions", job.nextBatchId);
  return scheduled?.state.kind ?? "none";
}

async function scheduleBatch(ctx: MutationCtx, jobId: Id<"keyRotationJobs">, sequence: number) {
  return ctx.scheduler.runAfter(0, internal.keyRotation.runBatch, { jobId, sequence });
}

async function endJob(ctx: MutationCtx, job: Job, stopReason?: RotationStopReason): Promise<void> {
  const now = Date.now();
  await ctx.db.patch("keyRotationJobs", job._id, {
    status: stopReason ? "stopped" : "done",
    ...(stopReason ? { stopReason } : {}),
    finishedAt: now,
    updatedAt: now,
  });
  const { reEncrypted, migrated, failed, alreadyCurrent } = job.counts;
  // Operators watch `npx convex logs`: ids, counts and codes only.
  console.info(
    `keyRotation ${job._id}${job.dryRun ? " (dry run)" : ""} ${stopReason ? `stopped: ${stopReason.code}` : "done"}: ` +
      `${reEncrypted} re-encrypted, ${migrated} migrated, ${alreadyCurrent} already current, ${failed} failed`,
  );
  if (job.dryRun) return;
  await recordAudit(ctx, {
    action: "keyRotation.finished",
    targetTable: "keyRotationJobs",
    targetId: job._id,
    detail: stopReason
      ? `stopped: ${stopReason.code}`
      : `done: ${reEncrypted} re-encrypted, ${migrated} migrated, ${failed} failed, ${outstanding(job.verification)} outstanding`,
  });
}

/** Result of one batch, applied to the job by `advance`. */
interface BatchResult {
  handled: number;
  derivations: number;
  bytes: number;
  /** Position of the last row handled (unchanged when none was). */
  cursor: RotationCursor | undefined;
  /** True when the table has no rows after `cursor`. */
  tableDone: boolean;
  shapes: SecretShapeCounts;
  counts: RotationCounts;
}

/**
 * Reads a batch's rows page by page, in index order after the job's cursor,
 * within its row and byte budgets. Pages are sized from the largest row
 * seen so far (`bytesPerRow` times its size: 2 when rows are rewritten), so
 * a page of rows like the ones before it stays within the byte budget.
 */
class RowReader {
  bytes = 0;
  handled = 0;
  /** True once a page came back short: nothing after the last row read. */
  exhausted = false;
  #largestRow = 0;
  #cursor: RotationCursor | undefined;
  #pending: RotationRow[] = [];

  constructor(
    private readonly ctx: MutationCtx,
    private readonly job: Job,
    private readonly budget: { rows: number; bytes: number },
    private readonly bytesPerRow: number,
  ) {
    this.#cursor = job.cursor;
  }

  /** Whether the budgets allow handling another row after `handled` rows. */
  #hasRoom(): boolean {
    return this.handled === 0 || (this.handled < this.budget.rows && this.bytes < this.budget.bytes);
  }

  /** The next row to handle, or null when the table is done or a budget is spent. */
  async next(): Promise<{ row: RotationRow; size: number } | null> {
    if (!this.#hasRoom()) return null;
    if (this.#pending.length === 0) {
      if (this.exhausted) return null;
      const rowsLeft = this.budget.rows - this.handled;
      const bytesLeft = Math.max(0, this.budget.bytes - this.bytes);
      const bySize = this.#largestRow === 0 ? FIRST_PAGE_ROWS : Math.floor(bytesLeft / (this.bytesPerRow * this.#largestRow));
      const pageRows = Math.max(1, Math.min(MAX_PAGE_ROWS, rowsLeft, bySize));
      this.#pending = await readRowsAfter(this.ctx.db, this.job.table, this.#cursor, pageRows);
      if (this.#pending.length < pageRows) this.exhausted = true;
      for (const row of this.#pending) {
        const size = getDocumentSize(row.doc);
        this.bytes += size;
        this.#largestRow = Math.max(this.#largestRow, size);
      }
      const last = this.#pending.at(-1);
      if (last) this.#cursor = positionOf(last);
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

/** Scan or verify: classify rows by header against the job's key ids (no crypto, no writes). */
async function countBatch(ctx: MutationCtx, job: Job, keys: JobKeyIds): Promise<BatchResult> {
  const reader = new RowReader(ctx, job, budgetsOf(job), 1);
  let shapes = emptyShapeCounts();
  let cursor = job.cursor;
  for (let next = await reader.next(); next; next = await reader.next()) {
    shapes = countShape(shapes, shapeOf(next.row, keys));
    reader.handled++;
    cursor = positionOf(next.row);
  }
  return {
    handled: reader.handled,
    derivations: 0,
    bytes: reader.bytes,
    cursor,
    tableDone: reader.tableDone,
    shapes,
    counts: emptyCounts(),
  };
}

/** Rotate: process rows until a budget is spent (rows, bytes, or the keyring's PBKDF2 runs). */
async function rotateBatch(ctx: MutationCtx, job: Job, keys: JobKeyIds, keyring: Keyring): Promise<BatchResult> {
  const budget = budgetsOf(job);
  const reader = new RowReader(ctx, job, budget, job.dryRun ? 1 : 2);
  const counts = emptyCounts();
  let cursor = job.cursor;
  let stoppedEarly = false;
  for (let next = await reader.next(); next; next = await reader.next()) {
    const { row, size } = next;
    const shape = shapeOf(row, keys);
    const rewrite = writesRow(shape, job.dryRun);
    const overDerivations = keyring.pbkdf2Runs + derivationsNeeded(row, shape, keyring) > budget.derivations;
    if (reader.handled > 0 && (overDerivations || !reader.fits(rewrite ? size : 0))) {
      stoppedEarly = true;
      break;
    }

    const outcome = await processRow(ctx, row, shape, keyring, job.dryRun);
    counts.scanned++;
    if (typeof outcome === "string") {
      counts[outcome]++;
      // The patch read the document again.
      if (rewrite && outcome !== "alreadyCurrent") reader.bytes += size;
    } else {
      counts.failed++;
      const keyId = "keyId" in shape ? shape.keyId : undefined;
      console.warn(
        `keyRotation ${job._id}: ${row.table} ${row.doc._id} left unchanged: ${outcome.failed}${keyId ? ` (master key ${keyId})` : ""}`,
      );
      await ctx.db.insert("keyRotationFailures", {
        jobId: job._id,
        table: row.table,
        rowId: row.doc._id,
        code: outcome.failed,
        ...(keyId ? { keyId } : {}),
        at: Date.now(),
      });
    }
    reader.handled++;
    cursor = positionOf(row);
  }
  return {
    handled: reader.handled,
    derivations: keyring.pbkdf2Runs,
    bytes: reader.bytes,
    cursor,
    tableDone: !stoppedEarly && reader.tableDone,
    shapes: emptyShapeCounts(),
    counts,
  };
}

/** Field-by-field sum of two records of counts (shape counts, rotation counts). */
function sumCounts<T extends Record<keyof T, number>>(a: T, b: T): T {
  const sum = { ...a };
  for (const field of Object.keys(b) as (keyof T)[]) sum[field] = (a[field] + b[field]) as T[keyof T];
  return sum;
}

/** Records a batch in the job, then schedules the next batch, moves to the next stage, or ends the job. */
async function advance(ctx: MutationCtx, job: Job, batch: BatchResult): Promise<void> {
  const updated: Job = {
    ...job,
    preflight: job.phase === "scan" ? sumCounts(job.preflight, batch.shapes) : job.preflight,
    verification: job.phase === "verify" ? sumCounts(job.verification, batch.shapes) : job.verification,
    counts: sumCounts(job.counts, batch.counts),
    batches: job.batches + 1,
    maxBatchRows: Math.max(job.maxBatchRows, batch.handled),
    maxBatchDerivations: Math.max(job.maxBatchDerivations, batch.derivations),
    maxBatchBytes: Math.max(job.maxBatchBytes ?? 0, batch.bytes),
    cursor: batch.cursor,
    updatedAt: Date.now(),
  };
  const next = batch.tableDone ? nextStage(job) : { phase: job.phase, table: job.table };
  if (batch.tableDone && next !== null) {
    updated.phase = next.phase;
    updated.table = next.table;
    updated.cursor = undefined;
  }
  const { _id, _creationTime, ...fields } = updated;
  await ctx.db.replace("keyRotationJobs", _id, fields);

  if (next === null) return endJob(ctx, updated);
  if (job.phase === "scan" && next.phase === "rotate" && updated.preflight.unknownKey > 0 && job.previousKeyIds.length === 0) {
    return endJob(ctx, updated, {
      code: "UNKNOWN_KEYS_WITHOUT_OLD_KEY",
      message:
        `${updated.preflight.unknownKey} rows are encrypted under a key that is not configured and OLD_MASTER_KEY is empty: ` +
        "set OLD_MASTER_KEY to the previous master key, then run keyRotation:rotate again",
    });
  }
  const nextBatchId = await scheduleBatch(ctx, _id, job.sequence);
  await ctx.db.patch("keyRotationJobs", _id, { nextBatchId });
}

/** One batch of a job; scheduled by `rotate` and by the batch before it. */
export const runBatch = internalMutation({
  args: { jobId: v.id("keyRotationJobs"), sequence: v.number() },
  returns: v.null(),
  handler: async (ctx, { jobId, sequence }) => {
    const job = await ctx.db.get("keyRotationJobs", jobId);
    // A chain replaced by a resume, or a finished job: nothing to do.
    if (!job || job.status !== "running" || job.sequence !== sequence) return null;
    const keys = jobKeyIds(job);
    if (keys === null) {
      await endJob(ctx, job, {
        code: "KEYRING_CHANGED",
        message: "this job was started by an older version (no v1 key ids): run keyRotation:rotate again to start a new job",
      });
      return null;
    }
    let batch: BatchResult;
    if (job.phase === "rotate") {
      // The keyring is loaded (deriving nothing) only where crypto runs; scan and verify need none.
      const keyring = loadKeyring(await readRootSalt(ctx.db));
      // The current root (one PBKDF2) is needed to encrypt anyway; its id tells whether the key changed.
      if ((await keyring.current.keyId()) !== job.currentKeyId) {
        await endJob(ctx, job, {
          code: "KEYRING_CHANGED",
          message: "MASTER_ENCRYPTION_KEY changed while the job ran: run keyRotation:rotate again to start a new job",
        });
        return null;
      }
      batch = await rotateBatch(ctx, job, keys, keyring);
    } else {
      batch = await countBatch(ctx, job, keys);
    }
    console.info(
      `keyRotation ${job._id} batch ${job.batches + 1} (${job.phase} ${job.table}): ${batch.handled} rows, ` +
        `${batch.bytes} bytes read, ${batch.derivations} key derivations`,
    );
    await advance(ctx, job, batch);
    return null;
  },
});

/**
 * Starts a rotation job, or returns the running one: a second call joins the
 * job whose batch chain is alive, and resumes (from its cursor) a job whose
 * chain died because a batch threw, halving its derivation, row and byte
 * budgets first: a batch that hit a limit is retried smaller. A running job
 * of the other mode (dry run vs real) is CONFLICT while its chain is alive,
 * and is ended (REPLACED) if its chain died. `dryRun` decrypts to find
 * failures and counts what would change, but writes nothing outside the
 * job's own tables (and the deployment's root salt, if it had none yet).
 * Refuses when OLD_MASTER_KEY contains the current key. Starting a job
 * computes the v2 and v1 ids of every configured key: two PBKDF2 runs per key.
 */
export const rotate = internalMutation({
  args: { dryRun: v.optional(v.boolean()) },
  returns: v.object({
    jobId: v.id("keyRotationJobs"),
    outcome: v.union(v.literal("started"), v.literal("joined"), v.literal("resumed")),
    dryRun: v.boolean(),
  }),
  handler: async (ctx, { dryRun = false }) => {
    const keyring = await loadKeyringForWrite(ctx);
    if (keyring.previousIncludesCurrent) {
      throw appError(
        "INVALID_ARGUMENT",
        "OLD_MASTER_KEY contains the current MASTER_ENCRYPTION_KEY: set MASTER_ENCRYPTION_KEY to the new key and OLD_MASTER_KEY to the old one",
      );
    }
    const currentKeyId = await keyring.current.keyId();
    const latest = await latestJob(ctx);
    if (latest?.status === "running") {
      const batchState = await batchStateOf(ctx, latest);
      const alive = batchState === "pending" || batchState === "inProgress";
      if (latest.currentKeyId !== currentKeyId) {
        await endJob(ctx, latest, {
          code: "KEYRING_CHANGED",
          message: "MASTER_ENCRYPTION_KEY changed while the job ran; a new job replaced it",
        });
      } else if (latest.dryRun !== dryRun) {
        if (alive) {
          throw appError(
            "CONFLICT",
            `A ${latest.dryRun ? "dry run" : "rotation"} is running (job ${latest._id}); wait for it to finish (keyRotation:status)`,
          );
        }
        // Its batch chain died: the job asked for now takes over instead of waiting forever.
        await endJob(ctx, latest, {
          code: "REPLACED",
          message: `its batches had stopped (${batchState}) when a ${dryRun ? "dry run" : "rotation"} was started`,
        });
      } else if (alive) {
        return { jobId: latest._id, outcome: "joined" as const, dryRun };
      } else {
        const sequence = latest.sequence + 1;
        const before = budgetsOf(latest);
        const derivationBudget = Math.max(1, Math.floor(before.derivations / 2));
        const rowBudget = Math.max(1, Math.floor(before.rows / 2));
        const byteBudget = Math.max(MIN_BYTE_BUDGET, Math.floor(before.bytes / 2));
        const nextBatchId = await scheduleBatch(ctx, latest._id, sequence);
        await ctx.db.patch("keyRotationJobs", latest._id, {
          sequence,
          nextBatchId,
          derivationBudget,
          rowBudget,
          byteBudget,
          resumes: latest.resumes + 1,
          updatedAt: Date.now(),
        });
        console.info(
          `keyRotation ${latest._id} resumed (its batch was ${batchState}): budgets per batch ` +
            `${before.derivations} -> ${derivationBudget} derivations, ${before.rows} -> ${rowBudget} rows, ${before.bytes} -> ${byteBudget} bytes`,
        );
        return { jobId: latest._id, outcome: "resumed" as const, dryRun };
      }
    }

    // Once per job: batches classify values by header against these ids, with no crypto.
    const previousKeyIds = await Promise.all(keyring.previous.map((key) => key.keyId()));
    const [currentV1KeyId, ...previousV1KeyIds] = await Promise.all(keyring.all.map((key) => key.v1KeyId()));
    const now = Date.now();
    const jobId = await ctx.db.insert("keyRotationJobs", {
      status: "running",
      dryRun,
      currentKeyId,
      previousKeyIds,
      ...(currentV1KeyId !== undefined ? { currentV1KeyId } : {}),
      previousV1KeyIds,
      phase: "scan",
      table: TABLES[0],
      sequence: 0,
      preflight: emptyShapeCounts(),
      verification: emptyShapeCounts(),
      counts: emptyCounts(),
      batches: 0,
      maxBatchRows: 0,
      maxBatchDerivations: 0,
      maxBatchBytes: 0,
      derivationBudget: MAX_DERIVATIONS_PER_BATCH,
      rowBudget: MAX_ROWS_PER_BATCH,
      byteBudget: MAX_BYTES_PER_BATCH,
      resumes: 0,
      startedAt: now,
      updatedAt: now,
    });
    await ctx.db.patch("keyRotationJobs", jobId, { nextBatchId: await scheduleBatch(ctx, jobId, 0) });
    if (!dryRun) {
      await recordAudit(ctx, {
        action: "keyRotation.started",
        targetTable: "keyRotationJobs",
        targetId: jobId,
        detail: `current key ${currentKeyId}; previous keys ${previousKeyIds.join(", ") || "none"}`,
      });
    }
    return { jobId, outcome: "started" as const, dryRun };
  },
});

/**
 * Whether the deployment's keys are still the ones the job rotated to and
 * from: otherwise its result says nothing about the data under today's
 * keys (e.g. the next rotation was configured but not yet started).
 */
async function jobMatchesKeysNow(ctx: QueryCtx, job: Job): Promise<boolean> {
  let keyring: Keyring;
  try {
    keyring = loadKeyring(await readRootSalt(ctx.db));
    // One PBKDF2 per configured key: only asked once a job looks complete.
    const [currentKeyId, ...previousKeyIds] = await Promise.all(keyring.all.map((key) => key.keyId()));
    return currentKeyId === job.currentKeyId && previousKeyIds.every((id) => job.previousKeyIds.includes(id));
  } catch {
    return false;
  }
}

/** The latest job (or `jobId`): phase, counts, per-batch maxima and budget, state of its next batch, first failures. */
export const status = internalQuery({
  args: { jobId: v.optional(v.id("keyRotationJobs")) },
  returns: v.union(v.null(), rotationJobStatusValidator),
  handler: async (ctx, { jobId }) => {
    const job = jobId ? await ctx.db.get("keyRotationJobs", jobId) : await latestJob(ctx);
    if (!job) return null;
    const failures = await ctx.db
      .query("keyRotationFailures")
      .withIndex("by_jobId", (q) => q.eq("jobId", job._id))
      .take(FAILURE_SAMPLE_SIZE);
    return {
      ...job,
      derivationBudget: budgetsOf(job).derivations,
      rowBudget: budgetsOf(job).rows,
      byteBudget: budgetsOf(job).bytes,
      batchState: await batchStateOf(ctx, job),
      safeToRemoveOldKey:
        job.status === "done" &&
        !job.dryRun &&
        job.counts.failed === 0 &&
        outstanding(job.verification) === 0 &&
        (await jobMatchesKeysNow(ctx, job)),
      failureSample: failures.map(({ table, rowId, code, keyId }) => ({ table, rowId, code, ...(keyId ? { keyId } : {}) })),
    };
  },
});

/** Every failure of a job, a page at a time (ids and error codes only). */
export const failures = internalQuery({
  args: { jobId: v.id("keyRotationJobs"), paginationOpts: paginationOptsValidator },
  returns: paginationResultValidator(
    v.object({ _id: v.id("keyRotationFailures"), _creationTime: v.number(), ...rotationFailureFields }),
  ),
  handler: async (ctx, { jobId, paginationOpts }) => {
    return ctx.db
      .query("keyRotationFailures")
      .withIndex("by_jobId", (q) => q.eq("jobId", jobId))
      .paginate(paginationOpts);
  },
});
