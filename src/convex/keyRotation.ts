/**
 * Master-key rotation and format migration, run by an operator with
 * `npx convex run keyRotation:rotate` (runbook: docs/key-rotation.md).
 *
 * `rotate` computes, once, the v2 and v1 ids of every configured master key
 * (two PBKDF2 runs per key) and stores them in the job. The job then walks
 * every table holding a secret in three phases, one self-scheduling
 * mutation (batch) at a time:
 * 1. scan: counts secrets by the key id in their header against the job's
 *    ids (no crypto, no writes) and refuses to go on when rows are under a
 *    key id no configured key has, unless the job was started with
 *    allowMissingKeys (those rows then become failures);
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
import { v } from "convex/values";
import { internal } from "./_generated/api";
import type { Doc, Id } from "./_generated/dataModel";
import { internalMutation, internalQuery, type MutationCtx, type QueryCtx } from "./_generated/server";
import { recordAudit } from "./audit";
import { appError } from "./errors";
import type { Keyring } from "./lib/keyring";
import {
  inventoryOf,
  nextStep,
  progressOf,
  readConfiguredKeys,
  ROTATE_COMMAND,
  unusableOldKeyEntries,
} from "./rotation/status";
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
  type SecretShape,
} from "./rotation/rows";
import { BudgetedRowReader, MIN_BYTE_BUDGET, scheduledBatchState, sumCounts, type BatchBudget } from "./rotation/batchReader";
import { loadKeyring, loadKeyringForWrite, readRootSalt, recordKeyIdOrder, weakMasterKeyError } from "./secrets";
import {
  rotationFailureFields,
  rotationStatusResultValidator,
  type RotationInventory,
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

/**
 * Most OLD_MASTER_KEY entries a job starts with: `rotate` computes a v2 and
 * a v1 id for every configured key in one mutation (2 PBKDF2 runs each,
 * ~37 ms), so 1 + 3 keys are 8 runs, ~0.3 s of the 1 s a mutation may run
 * (the suite holds every query and mutation to 8: src/test/helpers/executions.ts).
 */
export const MAX_PREVIOUS_KEYS = 3;

/** How many failures keyRotation:status lists (all of them: keyRotation:failures). */
export const FAILURE_SAMPLE_SIZE = 20;

/** Per-row failure lines one batch logs; the rest of the batch's failures are one summary line. */
export const MAX_FAILURE_LOG_LINES = 5;

/** Distinct key ids a job's inventory lists; rows under further ids are counted together. */
export const MAX_INVENTORY_KEY_IDS = 50;

/** Earlier jobs read to tell whether a key was ever rotated to or from (swapped-variable detection). */
const HISTORY_JOBS = 50;

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

function batchStateOf(ctx: QueryCtx, job: Job): Promise<RotationBatchState> {
  return scheduledBatchState(ctx.db, job.nextBatchId);
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
  /** Scan only: rows per key id in this batch. */
  inventory: RotationInventory;
}

function emptyInventory(): RotationInventory {
  return { keyIds: [], otherKeyIdRows: 0, originalFormat: 0 };
}

/** `inventory` with `rows` more under (keyId, format); ids past MAX_INVENTORY_KEY_IDS go to otherKeyIdRows. */
function addKeyIdRows(inventory: RotationInventory, keyId: string, format: "v1" | "v2", rows: number): RotationInventory {
  const index = inventory.keyIds.findIndex((entry) => entry.keyId === keyId && entry.format === format);
  if (index >= 0) {
    const keyIds = inventory.keyIds.map((entry, i) => (i === index ? { ...entry, rows: entry.rows + rows } : entry));
    return { ...inventory, keyIds };
  }
  if (inventory.keyIds.length >= MAX_INVENTORY_KEY_IDS) return { ...inventory, otherKeyIdRows: inventory.otherKeyIdRows + rows };
  return { ...inventory, keyIds: [...inventory.keyIds, { keyId, format, rows }] };
}

/** Adds one row's shape to an inventory (API keys name no master key). */
function inventoryWith(inventory: RotationInventory, row: RotationRow, shape: SecretShape, keys: JobKeyIds): RotationInventory {
  if (row.table === "apiKeys") return inventory;
  switch (shape.kind) {
    case "current":
      return addKeyIdRows(inventory, keys.v2[0] ?? "", "v2", 1);
    case "previousKey":
      return addKeyIdRows(inventory, shape.keyId, "v2", 1);
    case "olderFormat":
      return addKeyIdRows(inventory, shape.keyId, "v1", 1);
    case "unknownKey":
      return addKeyIdRows(inventory, shape.keyId, shape.format, 1);
    case "legacyFormat":
      return { ...inventory, originalFormat: inventory.originalFormat + 1 };
    default:
      return inventory;
  }
}

/** Two inventories added up. */
function mergeInventories(a: RotationInventory, b: RotationInventory): RotationInventory {
  let merged: RotationInventory = {
    ...a,
    otherKeyIdRows: a.otherKeyIdRows + b.otherKeyIdRows,
    originalFormat: a.originalFormat + b.originalFormat,
  };
  for (const { keyId, format, rows } of b.keyIds) merged = addKeyIdRows(merged, keyId, format, rows);
  return merged;
}

/** A reader of the job's table within `budget`, from the job's cursor (rotation/batchReader.ts). */
function rowReader(ctx: MutationCtx, job: Job, budget: BatchBudget, bytesPerRow: number) {
  return new BudgetedRowReader<RotationRow, RotationCursor>(
    (after, limit) => readRowsAfter(ctx.db, job.table, after, limit),
    positionOf,
    job.cursor,
    budget,
    bytesPerRow,
  );
}

/** Scan or verify: classify rows by header against the job's key ids (no crypto, no writes). */
async function countBatch(ctx: MutationCtx, job: Job, keys: JobKeyIds): Promise<BatchResult> {
  const reader = rowReader(ctx, job, budgetsOf(job), 1);
  let shapes = emptyShapeCounts();
  let inventory = emptyInventory();
  let cursor = job.cursor;
  for (let next = await reader.next(); next; next = await reader.next()) {
    const shape = shapeOf(next.row, keys);
    shapes = countShape(shapes, shape);
    if (job.phase === "scan") inventory = inventoryWith(inventory, next.row, shape, keys);
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
    inventory,
  };
}

/** Rotate: process rows until a budget is spent (rows, bytes, or the keyring's PBKDF2 runs). */
async function rotateBatch(ctx: MutationCtx, job: Job, keys: JobKeyIds, keyring: Keyring): Promise<BatchResult> {
  const budget = budgetsOf(job);
  const reader = rowReader(ctx, job, budget, job.dryRun ? 1 : 2);
  const counts = emptyCounts();
  let cursor = job.cursor;
  let stoppedEarly = false;
  let unlogged = 0;
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
      // Bounded: a few lines per batch, then one summary; keyRotation:failures lists every row.
      if (counts.failed <= MAX_FAILURE_LOG_LINES) {
        console.warn(
          `keyRotation ${job._id}: ${row.table} ${row.doc._id} left unchanged: ${outcome.failed}${keyId ? ` (master key ${keyId})` : ""}`,
        );
      } else {
        unlogged++;
      }
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
  if (unlogged > 0) {
    console.warn(`keyRotation ${job._id}: ${unlogged} more rows left unchanged in this batch (keyRotation:failures lists them)`);
  }
  return {
    handled: reader.handled,
    derivations: keyring.pbkdf2Runs,
    bytes: reader.bytes,
    cursor,
    tableDone: !stoppedEarly && reader.tableDone,
    shapes: emptyShapeCounts(),
    counts,
    inventory: emptyInventory(),
  };
}


/** Row counts of the scan's inventory under the job's current key and under its previous keys (v2 and v1). */
function rowsByJobKey(job: Job, keys: JobKeyIds): { current: number; previous: number } {
  let current = 0;
  let previous = 0;
  for (const { keyId, format, rows } of job.inventory?.keyIds ?? []) {
    const index = (format === "v2" ? keys.v2 : keys.v1).indexOf(keyId);
    if (index === 0) current += rows;
    else if (index > 0) previous += rows;
  }
  return { current, previous };
}

/** " (N rows are unreadable as stored: see preflight.invalid)" when there are any. */
function invalidNote(job: Job): string {
  return job.preflight.invalid > 0 ? ` (${job.preflight.invalid} rows are unreadable as stored: see preflight.invalid)` : "";
}

/**
 * Decides, once the scan is complete and before anything is written,
 * whether the job must stop: rows under key ids no configured key has
 * (UNKNOWN_KEY_IDS, unless the job was started with allowMissingKeys), or
 * nothing to rotate (NOTHING_TO_ROTATE, with the likely cause). Null: go on.
 *
 * Swapped variables: previous keys are configured, no row is under any of
 * them, rows are under the current key, and one of OLD_MASTER_KEY's keys
 * was never the current or a previous key of an earlier real job that
 * got past its scan. A freshly generated key that sits in OLD_MASTER_KEY
 * with nothing under it is what a swap looks like; a key a finished
 * rotation moved the data off is not.
 */
async function refusalAfterScan(ctx: MutationCtx, job: Job, keys: JobKeyIds): Promise<RotationStopReason | null> {
  const { preflight } = job;
  if (preflight.unknownKey > 0 && !job.allowMissingKeys) {
    const missingKeyIds = (job.inventory?.keyIds ?? [])
      .filter(({ keyId, format }) => !(format === "v2" ? keys.v2 : keys.v1).includes(keyId))
      .map(({ keyId }) => keyId);
    const unusable = unusableOldKeyEntries();
    return {
      code: "UNKNOWN_KEY_IDS",
      missingKeyIds,
      message:
        `${preflight.unknownKey} rows are under master key ids no configured key has: ${missingKeyIds.join(", ") || "(see inventory)"}. ` +
        "Nothing was written. Find the key(s) with these ids (each keyRotation.started audit entry lists the ids configured then), " +
        `add them to OLD_MASTER_KEY (comma-separated), then run ${ROTATE_COMMAND} again` +
        (unusable.length > 0
          ? `; ${unusable.map((entry) => `OLD_MASTER_KEY (entry ${entry})`).join(", ")} is unusable and may be one of them`
          : "") +
        `. To give those rows up instead (they become failures): ${ROTATE_COMMAND} '{"allowMissingKeys": true}'`,
    };
  }
  if (preflight.unknownKey > 0) return null;
  const toMigrate = preflight.legacyFormat + preflight.plaintext;
  const under = rowsByJobKey(job, keys);
  if (job.previousKeyIds.length === 0) {
    if (toMigrate > 0) return null;
    return {
      code: "NOTHING_TO_ROTATE",
      cause: "NO_OLD_KEY",
      message:
        "Nothing to rotate: every row is under MASTER_ENCRYPTION_KEY in format v2 and OLD_MASTER_KEY is empty" +
        `${invalidNote(job)}. To rotate the key, start at step 1 of docs/key-rotation.md`,
    };
  }
  if (under.previous > 0) return null;

  const history = (await ctx.db.query("keyRotationJobs").order("desc").take(HISTORY_JOBS)).filter(
    (earlier) => earlier._id !== job._id && !earlier.dryRun && (earlier.status === "done" || earlier.counts.scanned > 0),
  );
  const neverUsed = job.previousKeyIds.filter(
    (keyId) => !history.some((earlier) => earlier.currentKeyId === keyId || earlier.previousKeyIds.includes(keyId)),
  );
  if (under.current > 0 && neverUsed.length > 0) {
    return {
      code: "NOTHING_TO_ROTATE",
      cause: "SWAPPED_KEYS",
      message:
        `Nothing to rotate: the ${under.current} encrypted rows are under MASTER_ENCRYPTION_KEY (${job.currentKeyId}) and none under ` +
        `OLD_MASTER_KEY, whose key ${neverUsed.join(", ")} no rotation ever used: the variables look swapped ` +
        "(MASTER_ENCRYPTION_KEY holds the old key, OLD_MASTER_KEY the new one). Nothing was written; keep both keys. " +
        "Swap them back (docs/key-rotation.md, \"Swapped variables\"), check keyRotation:status, then run the rotation again",
    };
  }
  if (toMigrate > 0) return null;
  const finished = history.find((earlier) => earlier.status === "done" && earlier.currentKeyId === job.currentKeyId);
  return {
    code: "NOTHING_TO_ROTATE",
    cause: "ALREADY_ROTATED",
    message:
      `Nothing to rotate: every row is already under MASTER_ENCRYPTION_KEY (${job.currentKeyId}) and none under OLD_MASTER_KEY's keys` +
      `${invalidNote(job)}: ${finished ? `job ${finished._id}` : "an earlier rotation"} moved them. ` +
      (finished
        ? `If npx convex run keyRotation:status '{"jobId": "${finished._id}"}' shows safeToRemoveOldKey: true, remove OLD_MASTER_KEY (step 6)`
        : "Keep OLD_MASTER_KEY until a finished rotation shows safeToRemoveOldKey: true"),
  };
}

/** Records a batch in the job, then schedules the next batch, moves to the next stage, or ends the job. */
async function advance(ctx: MutationCtx, job: Job, keys: JobKeyIds, batch: BatchResult): Promise<void> {
  const now = Date.now();
  const updated: Job = {
    ...job,
    preflight: job.phase === "scan" ? sumCounts(job.preflight, batch.shapes) : job.preflight,
    verification: job.phase === "verify" ? sumCounts(job.verification, batch.shapes) : job.verification,
    counts: sumCounts(job.counts, batch.counts),
    ...(job.phase === "scan" ? { inventory: mergeInventories(job.inventory ?? emptyInventory(), batch.inventory) } : {}),
    batches: job.batches + 1,
    maxBatchRows: Math.max(job.maxBatchRows, batch.handled),
    maxBatchDerivations: Math.max(job.maxBatchDerivations, batch.derivations),
    maxBatchBytes: Math.max(job.maxBatchBytes ?? 0, batch.bytes),
    cursor: batch.cursor,
    updatedAt: now,
  };
  const next = batch.tableDone ? nextStage(job) : { phase: job.phase, table: job.table };
  const scanEnds = batch.tableDone && job.phase === "scan" && next?.phase !== "scan";
  if (scanEnds) updated.scanFinishedAt = now;
  // Refusals come after the whole scan and before the first write; the job stays at the end of its scan.
  const refusal = scanEnds ? await refusalAfterScan(ctx, updated, keys) : null;
  if (batch.tableDone && next !== null && refusal === null) {
    if (next.phase !== job.phase) updated.phaseStartedAt = now;
    updated.phase = next.phase;
    updated.table = next.table;
    updated.cursor = undefined;
  }
  const { _id, _creationTime, ...fields } = updated;
  await ctx.db.replace("keyRotationJobs", _id, fields);

  if (refusal !== null) return endJob(ctx, updated, refusal);
  if (next === null) return endJob(ctx, updated);
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
    await advance(ctx, job, keys, batch);
    return null;
  },
});

/** Smallest budgets a resume halves to: a chain that still dies there does not die from its size. */
function atMinimumBudgets(job: Job): boolean {
  const budgets = budgetsOf(job);
  return budgets.derivations <= 1 && budgets.rows <= 1 && budgets.bytes <= MIN_BYTE_BUDGET;
}

/**
 * Restarts a job whose batch chain died (a batch failed, was canceled, or
 * its record is gone), from its cursor, with its derivation, row and byte
 * budgets halved first: a batch that hit a limit is retried smaller.
 * Returns what happened, for `rotate`'s plan.
 */
async function resumeJob(ctx: MutationCtx, job: Job, batchState: RotationBatchState, by: "rotate" | "cron"): Promise<string> {
  const sequence = job.sequence + 1;
  const before = budgetsOf(job);
  const derivationBudget = Math.max(1, Math.floor(before.derivations / 2));
  const rowBudget = Math.max(1, Math.floor(before.rows / 2));
  const byteBudget = Math.max(MIN_BYTE_BUDGET, Math.floor(before.bytes / 2));
  const nextBatchId = await scheduleBatch(ctx, job._id, sequence);
  const now = Date.now();
  await ctx.db.patch("keyRotationJobs", job._id, {
    sequence,
    nextBatchId,
    derivationBudget,
    rowBudget,
    byteBudget,
    resumes: job.resumes + 1,
    updatedAt: now,
    ...(by === "cron"
      ? { autoResumes: (job.autoResumes ?? 0) + 1, lastAutoResumeAt: now, batchesAtAutoResume: job.batches }
      : { batchesAtAutoResume: undefined, autoResumeGaveUpAt: undefined }),
  });
  const change =
    `budgets per batch ${before.derivations} -> ${derivationBudget} derivations, ` +
    `${before.rows} -> ${rowBudget} rows, ${before.bytes} -> ${byteBudget} bytes`;
  console.info(`keyRotation ${job._id} resumed by ${by} (its batch was ${batchState}): ${change}`);
  return `Its batch chain had stopped (batch ${batchState}): resumed from where it was, ${change}. Watch: npx convex run keyRotation:status`;
}

/** What a new job will do, in words (rotate's answer). */
function planOf(dryRun: boolean, currentKeyId: string, previousKeyIds: readonly string[], lastScanRows: number | undefined): string {
  const scan =
    "scan every connection, AI key and API key by its header (no crypto, no writes)" +
    (lastScanRows === undefined ? "" : `, about ${lastScanRows} rows at the last scan`);
  const work =
    previousKeyIds.length > 0
      ? `${dryRun ? "decrypt and count, writing nothing, " : "re-encrypt "}the rows under OLD_MASTER_KEY's keys (${previousKeyIds.join(", ")}) ` +
        `to MASTER_ENCRYPTION_KEY (${currentKeyId}) and ${dryRun ? "the rows in older formats to migrate" : "migrate older formats and plaintext"}`
      : `${dryRun ? "count the rows in older formats and plaintext to migrate" : "migrate older formats and plaintext"} to MASTER_ENCRYPTION_KEY (${currentKeyId}); OLD_MASTER_KEY is empty, so no key changes`;
  return (
    `${dryRun ? "Dry run: " : ""}${scan}; then ${work}${dryRun ? "" : ", then verify"}. ` +
    "The job stops after the scan, writing nothing, if rows are under a key id no configured key has, or if there is nothing to rotate " +
    "(swapped variables, a rotation already done). Watch: npx convex run keyRotation:status"
  );
}

/**
 * Starts a rotation job, or returns the running one: a second call joins the
 * job whose batch chain is alive, and resumes (from its cursor) a job whose
 * chain died because a batch threw, halving its derivation, row and byte
 * budgets first: a batch that hit a limit is retried smaller. A running job
 * of the other mode (dry run vs real) is CONFLICT while its chain is alive,
 * and is ended (REPLACED) if its chain died. `dryRun` decrypts to find
 * failures and counts what would change, but writes nothing outside the
 * job's own tables (and the deployment's root salt, if it had none yet).
 *
 * Refuses, creating nothing, when OLD_MASTER_KEY holds the current key
 * (step 1 of the runbook done, step 2 not), and when the current key
 * looks non-random while OLD_MASTER_KEY has keys (a rotation would move
 * every secret onto it). `allowMissingKeys` lets a job go past rows under
 * unknown key ids (they become failures) instead of stopping after the scan.
 * Starting a job computes the v2 and v1 ids of every configured key: two
 * PBKDF2 runs per key. Returns what will happen (`plan`).
 */
export const rotate = internalMutation({
  args: { dryRun: v.optional(v.boolean()), allowMissingKeys: v.optional(v.boolean()) },
  returns: v.object({
    jobId: v.id("keyRotationJobs"),
    outcome: v.union(v.literal("started"), v.literal("joined"), v.literal("resumed")),
    dryRun: v.boolean(),
    plan: v.string(),
  }),
  handler: async (ctx, { dryRun = false, allowMissingKeys = false }) => {
    const keyring = await loadKeyringForWrite(ctx);
    if (keyring.previousIncludesCurrent) {
      throw appError(
        "INVALID_ARGUMENT",
        "Old key saved, ready for a new MASTER_ENCRYPTION_KEY: OLD_MASTER_KEY holds the current MASTER_ENCRYPTION_KEY, so a rotation " +
          "would change nothing. Next: step 2 of docs/key-rotation.md (set MASTER_ENCRYPTION_KEY to a new key from openssl rand -hex 32), then rotate",
      );
    }
    const weak = keyring.current.weakReasons();
    if (weak.length > 0 && keyring.previous.length > 0) {
      throw weakMasterKeyError(weak, "a rotation would move every secret onto it");
    }
    if (keyring.previous.length > MAX_PREVIOUS_KEYS) {
      throw appError(
        "INVALID_ARGUMENT",
        `OLD_MASTER_KEY lists ${keyring.previous.length} usable keys; a rotation can start with at most ${MAX_PREVIOUS_KEYS} ` +
          "(it computes two ids per key in one mutation): remove the keys no data is under (keyRotation:status's inventory shows which), then rotate",
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
        const progress = progressOf(latest);
        const where = progress.percent === null ? `${progress.done} rows scanned` : `${progress.percent}% of ${progress.total} rows`;
        return {
          jobId: latest._id,
          outcome: "joined" as const,
          dryRun,
          plan: `Joined the running ${dryRun ? "dry run" : "rotation"} (phase ${latest.phase}, ${where}). Watch: npx convex run keyRotation:status`,
        };
      } else {
        const plan = await resumeJob(ctx, latest, batchState, "rotate");
        return { jobId: latest._id, outcome: "resumed" as const, dryRun, plan };
      }
    }

    // Once per job: batches classify values by header against these ids, with no crypto.
    const previousKeyIds = await Promise.all(keyring.previous.map((key) => key.keyId()));
    const [currentV1KeyId, ...previousV1KeyIds] = await Promise.all(keyring.all.map((key) => key.v1KeyId()));
    if (currentV1KeyId !== undefined) {
      await recordKeyIdOrder(ctx.db, { v2: [currentKeyId, ...previousKeyIds], v1: [currentV1KeyId, ...previousV1KeyIds] });
    }
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
      autoResumes: 0,
      inventory: emptyInventory(),
      ...(allowMissingKeys ? { allowMissingKeys } : {}),
      startedAt: now,
      phaseStartedAt: now,
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
    const lastScanRows = latest?.scanFinishedAt !== undefined ? latest.preflight.rows : undefined;
    return { jobId, outcome: "started" as const, dryRun, plan: planOf(dryRun, currentKeyId, previousKeyIds, lastScanRows) };
  },
});

/**
 * Cron (every 5 minutes): resumes the running job whose batch chain died
 * (a batch failed, was canceled, or its record vanished), with the same
 * halving as a manual resume, and records it (autoResumes,
 * lastAutoResumeAt). It gives up, logging once, when the chain died again
 * without a single batch since its last resume while the budgets are at
 * their minimum: that failure is not about size, a human must read the
 * error. With no job running it reads one document (the latest job).
 */
export const resumeStalled = internalMutation({
  args: {},
  returns: v.null(),
  handler: async (ctx) => {
    const job = await latestJob(ctx);
    if (!job || job.status !== "running" || job.autoResumeGaveUpAt !== undefined) return null;
    const batchState = await batchStateOf(ctx, job);
    if (batchState === "pending" || batchState === "inProgress") return null;
    if (job.batchesAtAutoResume === job.batches && atMinimumBudgets(job)) {
      await ctx.db.patch("keyRotationJobs", job._id, { autoResumeGaveUpAt: Date.now() });
      console.error(
        `keyRotation ${job._id}: batches keep failing at the smallest budgets; not resuming automatically any more. ` +
          `Read the error in the logs, fix it, then run ${ROTATE_COMMAND}`,
      );
      return null;
    }
    await resumeJob(ctx, job, batchState, "cron");
    return null;
  },
});

/**
 * Whether a row of the short-lived ciphertext tables the job does not visit
 * (oauthStates: PKCE verifiers and received codes; oauthRevocations: tokens
 * of removed connections) is older than `startedAt`, so may hold a value
 * under a key the job rotated away from. One read of the oldest row of each
 * (by creation time); such rows are gone within 15 minutes.
 */
async function unvisitedCiphertextsPredate(ctx: QueryCtx, startedAt: number): Promise<boolean> {
  const oldestFlow = await ctx.db.query("oauthStates").order("asc").first();
  const oldestRevocation = await ctx.db.query("oauthRevocations").order("asc").first();
  return [oldestFlow, oldestRevocation].some((row) => row !== null && row._creationTime < startedAt);
}

/**
 * The keys configured now (ids, unusable OLD_MASTER_KEY entries, a weak
 * current key, "old key saved"), the key ids the latest finished scan found
 * in the data against them, the next step, and the latest job (or `jobId`):
 * phase, progress, counts, per-batch maxima and budgets, state of its next
 * batch, resumes, first failures. Costs one PBKDF2 per configured key (its
 * v2 id), plus one per key when the data holds v1 values.
 */
export const status = internalQuery({
  args: { jobId: v.optional(v.id("keyRotationJobs")) },
  returns: rotationStatusResultValidator,
  handler: async (ctx, { jobId }) => {
    const keys = await readConfiguredKeys(await readRootSalt(ctx.db));
    const job = jobId ? await ctx.db.get("keyRotationJobs", jobId) : await latestJob(ctx);
    let jobStatus = null;
    let facts = null;
    if (job) {
      const failures = await ctx.db
        .query("keyRotationFailures")
        .withIndex("by_jobId", (q) => q.eq("jobId", job._id))
        .take(FAILURE_SAMPLE_SIZE);
      const { current, previous } = keys.state;
      // The job's result covers today's data only if today's keys are the ones it rotated to and from.
      const matchesKeysNow = current === job.currentKeyId && previous.every((id) => job.previousKeyIds.includes(id));
      const batchState = await batchStateOf(ctx, job);
      const progress = progressOf(job);
      const safeToRemoveOldKey =
        job.status === "done" &&
        !job.dryRun &&
        job.counts.failed === 0 &&
        outstanding(job.verification) === 0 &&
        matchesKeysNow &&
        !(await unvisitedCiphertextsPredate(ctx, job.startedAt));
      jobStatus = {
        ...job,
        derivationBudget: budgetsOf(job).derivations,
        rowBudget: budgetsOf(job).rows,
        byteBudget: budgetsOf(job).bytes,
        batchState,
        progress,
        autoResumes: job.autoResumes ?? 0,
        safeToRemoveOldKey,
        failureSample: failures.map(({ table, rowId, code, keyId }) => ({ table, rowId, code, ...(keyId ? { keyId } : {}) })),
      };
      facts = {
        doc: job,
        progress,
        batchAlive: batchState === "pending" || batchState === "inProgress",
        safeToRemoveOldKey,
        matchesKeysNow,
      };
    }
    const scanned =
      job?.scanFinishedAt !== undefined
        ? job
        : (await ctx.db.query("keyRotationJobs").order("desc").take(10)).find((earlier) => earlier.scanFinishedAt !== undefined);
    return {
      keys: keys.state,
      inventory: scanned ? await inventoryOf(scanned, keys) : null,
      next: nextStep(keys.state, facts),
      job: jobStatus,
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
