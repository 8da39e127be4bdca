/**
 * Master-key rotation and legacy migration, run by an operator with
 * `npx convex run keyRotation:rotate` (runbook: docs/key-rotation.md).
 *
 * A job walks every table holding a secret in three phases, one small
 * self-scheduling mutation (batch) at a time:
 * 1. scan: counts secrets by the key id in their header (no crypto, no
 *    writes) and refuses to go on when rows are under an unknown key while
 *    no OLD_MASTER_KEY is configured;
 * 2. rotate: re-encrypts rows under a previous key, migrates legacy
 *    ciphertext and plaintext, hashes plaintext API keys; rows already under
 *    the current key are skipped without decrypting; a row no key decrypts
 *    is recorded in keyRotationFailures and left untouched;
 * 3. verify: scans headers again and counts anything left behind.
 *
 * Each batch handles at most MAX_ROWS_PER_BATCH rows and performs at most
 * the job's derivation budget of PBKDF2 derivations (~30 ms each, the real
 * cost of a batch, counting the keyring's key ids when it loads cold), and
 * stops early at whichever comes first; the job's cursor is the index
 * position of the last row handled, so the next batch resumes exactly there.
 * A batch that throws (or exceeds Convex's time limit) rolls back as a
 * whole; running `rotate` again halves the budget and resumes the job from
 * its cursor, so a chain that died from the time limit converges.
 */
import { paginationOptsValidator, paginationResultValidator } from "convex/server";
import { v } from "convex/values";
import { internal } from "./_generated/api";
import type { Doc, Id } from "./_generated/dataModel";
import { internalMutation, internalQuery, type MutationCtx, type QueryCtx } from "./_generated/server";
import { recordAudit } from "./audit";
import { appError } from "./errors";
import { sharedKeyCache } from "./lib/kdf";
import { keyIdDerivationCount, type Keyring } from "./lib/keyring";
import {
  countShape,
  derivationsNeeded,
  emptyShapeCounts,
  positionOf,
  processRow,
  readRowsAfter,
  shapeOf,
} from "./rotation/rows";
import { loadKeyring } from "./secrets";
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

/** Most rows one batch reads and handles (bounded reads and writes per mutation). */
export const MAX_ROWS_PER_BATCH = 100;

/**
 * A new job's derivation budget: the most PBKDF2 derivations one batch
 * performs, counting the key ids a cold keyring load derives (one per
 * configured master key) and the AES keys its rows need. PBKDF2 runs
 * synchronously and counts toward Convex's 1 s of user code per mutation;
 * at ~30 ms each, 8 leave a 3x margin. A batch always handles at least one
 * row, so a row needing more than what is left still progresses.
 */
export const MAX_DERIVATIONS_PER_BATCH = 8;

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

/** The job's derivation budget per batch (jobs created before the budget was stored use the default). */
function derivationBudgetOf(job: Job): number {
  return job.derivationBudget ?? MAX_DERIVATIONS_PER_BATCH;
}

/**
 * PBKDF2 derivations performed since the call: AES keys (the shared cache)
 * and master-key ids (keyring loads). A batch starts one before loading the
 * keyring, so a cold load counts toward its budget.
 */
function startDerivationMeter(): () => number {
  const keysBefore = sharedKeyCache.derivations;
  const keyIdsBefore = keyIdDerivationCount();
  return () => sharedKeyCache.derivations - keysBefore + (keyIdDerivationCount() - keyIdsBefore);
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
  /** Position of the last row handled (unchanged when none was). */
  cursor: RotationCursor | undefined;
  /** True when the table has no rows after `cursor`. */
  tableDone: boolean;
  shapes: SecretShapeCounts;
  counts: RotationCounts;
}

/** Scan or verify: classify up to a batch of rows by header (no crypto, no writes). */
async function countBatch(ctx: MutationCtx, job: Job, keyring: Keyring, derivationsSoFar: () => number): Promise<BatchResult> {
  const rows = await readRowsAfter(ctx.db, job.table, job.cursor, MAX_ROWS_PER_BATCH);
  const shapes = rows.reduce((counts, row) => countShape(counts, shapeOf(row, keyring)), emptyShapeCounts());
  const last = rows.at(-1);
  return {
    handled: rows.length,
    derivations: derivationsSoFar(),
    cursor: last ? positionOf(last) : job.cursor,
    tableDone: rows.length < MAX_ROWS_PER_BATCH,
    shapes,
    counts: emptyCounts(),
  };
}

/** Rotate: process rows until the row or derivation budget is spent (`derivationsSoFar` counts this batch's). */
async function rotateBatch(ctx: MutationCtx, job: Job, keyring: Keyring, derivationsSoFar: () => number): Promise<BatchResult> {
  const rows = await readRowsAfter(ctx.db, job.table, job.cursor, MAX_ROWS_PER_BATCH);
  const budget = derivationBudgetOf(job);
  const derivedThisBatch = new Set<string>();
  const counts = emptyCounts();
  let cursor = job.cursor;
  let handled = 0;
  for (const row of rows) {
    const shape = shapeOf(row, keyring);
    const needed = derivationsNeeded(row, shape, keyring, job.dryRun).filter((label) => !derivedThisBatch.has(label));
    if (handled > 0 && derivationsSoFar() + needed.length > budget) break;

    const outcome = await processRow(ctx, row, shape, keyring, job.dryRun);
    for (const label of needed) derivedThisBatch.add(label);
    counts.scanned++;
    if (typeof outcome === "string") {
      counts[outcome]++;
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
    handled++;
    cursor = positionOf(row);
  }
  return {
    handled,
    derivations: derivationsSoFar(),
    cursor,
    tableDone: handled === rows.length && rows.length < MAX_ROWS_PER_BATCH,
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
async function advance(ctx: MutationCtx, job: Job, keyring: Keyring, batch: BatchResult): Promise<void> {
  const updated: Job = {
    ...job,
    preflight: job.phase === "scan" ? sumCounts(job.preflight, batch.shapes) : job.preflight,
    verification: job.phase === "verify" ? sumCounts(job.verification, batch.shapes) : job.verification,
    counts: sumCounts(job.counts, batch.counts),
    batches: job.batches + 1,
    maxBatchRows: Math.max(job.maxBatchRows, batch.handled),
    maxBatchDerivations: Math.max(job.maxBatchDerivations, batch.derivations),
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
  if (job.phase === "scan" && next.phase === "rotate" && updated.preflight.unknownKey > 0 && keyring.previous.length === 0) {
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
    const derivationsSoFar = startDerivationMeter();
    const keyring = await loadKeyring();
    if (keyring.current.id !== job.currentKeyId) {
      await endJob(ctx, job, {
        code: "KEYRING_CHANGED",
        message: "MASTER_ENCRYPTION_KEY changed while the job ran: run keyRotation:rotate again to start a new job",
      });
      return null;
    }
    const batch =
      job.phase === "rotate"
        ? await rotateBatch(ctx, job, keyring, derivationsSoFar)
        : await countBatch(ctx, job, keyring, derivationsSoFar);
    console.info(
      `keyRotation ${job._id} batch ${job.batches + 1} (${job.phase} ${job.table}): ${batch.handled} rows, ${batch.derivations} key derivations`,
    );
    await advance(ctx, job, keyring, batch);
    return null;
  },
});

/**
 * Starts a rotation job, or returns the running one: a second call joins the
 * job whose batch chain is alive, and resumes (from its cursor) a job whose
 * chain died because a batch threw, halving its derivation budget first: a
 * batch that hit the time limit is retried smaller. A running job of the
 * other mode (dry run vs real) is CONFLICT while its chain is alive, and is
 * ended (REPLACED) if its chain died. `dryRun` decrypts to find failures and
 * counts what would change, but writes nothing outside the job's own tables.
 * Refuses when OLD_MASTER_KEY contains the current key.
 */
export const rotate = internalMutation({
  args: { dryRun: v.optional(v.boolean()) },
  returns: v.object({
    jobId: v.id("keyRotationJobs"),
    outcome: v.union(v.literal("started"), v.literal("joined"), v.literal("resumed")),
    dryRun: v.boolean(),
  }),
  handler: async (ctx, { dryRun = false }) => {
    const keyring = await loadKeyring();
    if (keyring.previousIncludesCurrent) {
      throw appError(
        "INVALID_ARGUMENT",
        "OLD_MASTER_KEY contains the current MASTER_ENCRYPTION_KEY: set MASTER_ENCRYPTION_KEY to the new key and OLD_MASTER_KEY to the old one",
      );
    }
    const latest = await latestJob(ctx);
    if (latest?.status === "running") {
      const batchState = await batchStateOf(ctx, latest);
      const alive = batchState === "pending" || batchState === "inProgress";
      if (latest.currentKeyId !== keyring.current.id) {
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
        const derivationBudget = Math.max(1, Math.floor(derivationBudgetOf(latest) / 2));
        const nextBatchId = await scheduleBatch(ctx, latest._id, sequence);
        await ctx.db.patch("keyRotationJobs", latest._id, {
          sequence,
          nextBatchId,
          derivationBudget,
          resumes: latest.resumes + 1,
          updatedAt: Date.now(),
        });
        console.info(
          `keyRotation ${latest._id} resumed (its batch was ${batchState}): derivation budget ${derivationBudgetOf(latest)} -> ${derivationBudget}`,
        );
        return { jobId: latest._id, outcome: "resumed" as const, dryRun };
      }
    }

    const now = Date.now();
    const jobId = await ctx.db.insert("keyRotationJobs", {
      status: "running",
      dryRun,
      currentKeyId: keyring.current.id,
      previousKeyIds: keyring.previous.map((key) => key.id),
      phase: "scan",
      table: TABLES[0],
      sequence: 0,
      preflight: emptyShapeCounts(),
      verification: emptyShapeCounts(),
      counts: emptyCounts(),
      batches: 0,
      maxBatchRows: 0,
      maxBatchDerivations: 0,
      derivationBudget: MAX_DERIVATIONS_PER_BATCH,
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
        detail: `current key ${keyring.current.id}; previous keys ${keyring.previous.map((key) => key.id).join(", ") || "none"}`,
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
async function jobMatchesKeysNow(job: Job): Promise<boolean> {
  let keyring: Keyring;
  try {
    keyring = await loadKeyring();
  } catch {
    return false;
  }
  return keyring.current.id === job.currentKeyId && keyring.previous.every((key) => job.previousKeyIds.includes(key.id));
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
      derivationBudget: derivationBudgetOf(job),
      batchState: await batchStateOf(ctx, job),
      safeToRemoveOldKey:
        job.status === "done" &&
        !job.dryRun &&
        job.counts.failed === 0 &&
        outstanding(job.verification) === 0 &&
        (await jobMatchesKeysNow(job)),
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
