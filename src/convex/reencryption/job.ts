/**
 * The one re-encryption job (rotation and the upgrade from the original
 * Dashtray are the same walk; docs/key-rotation.md, "How the job runs"):
 * scan (headers only; stops before any write when a key is missing), rewrite
 * (rewrite.ts; pauses at a value whose key went away), verify. Each batch is
 * one self-scheduling mutation bounded by rows, bytes read and PBKDF2 runs;
 * a resume halves the budgets and restarts from the cursor.
 */
import type { Doc, Id } from "../_generated/dataModel";
import { internal } from "../_generated/api";
import type { MutationCtx, QueryCtx } from "../_generated/server";
import { recordAudit } from "../audit/trail";
import type { Keyring, MasterKey } from "../lib/keyring";
import { loadKeyring, readEncryptionSettings, retireLegacyFormat } from "../storedSecrets/encryption";
import { BudgetedRowReader, MIN_BYTE_BUDGET, scheduledBatchState } from "./batchReader";
import { rewriteRow, type Work } from "./rewrite";
import { addTallies, classify, emptyTally, JOB_TABLES, positionOf, readRows, tallyPage, type JobRow, type Shape } from "./rows";
import type { BatchState, Budgets, JobCounts, StopReason, Tally } from "./validators";

export const MAX_ROWS_PER_BATCH = 1000;
export const MAX_BYTES_PER_BATCH = 8 * 1024 * 1024;
export const MAX_DERIVATIONS_PER_BATCH = 8;
/** Per-row failure lines one batch logs; the rest are one summary line. */
export const MAX_FAILURE_LOG_LINES = 5;
export const ROTATE_COMMAND = "npx convex run keyRotation:rotate";

export type Job = Doc<"reencryptionJobs">;

export const DEFAULT_BUDGETS: Budgets = { rows: MAX_ROWS_PER_BATCH, bytes: MAX_BYTES_PER_BATCH, derivations: MAX_DERIVATIONS_PER_BATCH };

export function emptyCounts(): JobCounts {
  return { scanned: 0, reEncrypted: 0, migrated: 0, alreadyCurrent: 0, failed: 0 };
}

export function batchStateOf(ctx: { db: QueryCtx["db"] }, job: Job): Promise<BatchState> {
  return scheduledBatchState(ctx.db, job.nextBatchId);
}

export function scheduleBatch(ctx: MutationCtx, jobId: Id<"reencryptionJobs">, sequence: number) {
  return ctx.scheduler.runAfter(0, internal.keyRotation.runBatch, { jobId, sequence });
}

/**
 * PBKDF2 runs processing this row may still cost (an upper bound). The
 * current key's root is not counted: a rewrite batch derives it first. v2
 * under a previous key costs that key's root once per batch; v1 and
 * original-format values one run per (salt, key tried), shared by the salt's rows.
 */
function derivationsNeeded(row: JobRow, shape: Shape | null, keyring: Keyring): number {
  if (row.table === "apiKeys" || shape === null) return 0;
  const salt = row.table === "connections" ? row.doc.projectId : row.table === "aiKeys" ? row.doc.userId : row.doc._id;
  const missing = (key: MasterKey | undefined, kind: "root" | "v1" | "legacy") => (key && !key.hasDerived(kind, salt) ? 1 : 0);
  if (shape.kind === "previousKey") return missing(keyring.all[shape.keyIndex], "root");
  if (shape.kind === "olderFormat") return missing(keyring.all[shape.keyIndex], "v1");
  if (shape.kind === "originalFormat") return keyring.all.reduce((sum, key) => sum + missing(key, "legacy"), 0);
  return 0;
}

interface BatchResult {
  handled: number;
  derivations: number;
  bytes: number;
  cursor: Job["cursor"];
  tableDone: boolean;
  tally: Tally;
  counts: JobCounts;
  probe?: Job["originalProbe"];
  pause?: StopReason;
}

/** Scan or verify: rows classified by header (no crypto, no writes); the scan notes the first original-format value. */
async function countBatch(ctx: MutationCtx, job: Job): Promise<BatchResult> {
  const page = await tallyPage(ctx.db, job.table, job.cursor, job.keyIds, job.budgets);
  const probe = job.originalProbe ?? (page.firstOriginal ? { table: job.table, rowId: page.firstOriginal } : undefined);
  return { ...page, derivations: 0, tableDone: page.done, counts: emptyCounts(), probe };
}

/** The v2 ids the job started with that no configured key has now (derives each configured key's root once per batch). */
async function jobKeysMissing(keyring: Keyring, job: Job): Promise<string[]> {
  const configured = await Promise.all(keyring.all.map((key) => key.keyId()));
  return job.keyIds.v2.filter((keyId) => !configured.includes(keyId));
}

/** Rewrite: rows brought up to date until a budget is spent, or the job pauses at a value whose key is gone. */
async function rewriteBatch(ctx: MutationCtx, job: Job, keyring: Keyring, legacyRetired: boolean): Promise<BatchResult> {
  const read = async (after: Job["cursor"], limit: number) => (await readRows(ctx.db, job.table, after, limit)) as JobRow[];
  const rows = new BudgetedRowReader<JobRow, NonNullable<Job["cursor"]>>(read, positionOf, job.cursor, job.budgets, job.dryRun ? 1 : 2);
  const counts = emptyCounts();
  let cursor = job.cursor;
  let stoppedEarly = false;
  let pause: StopReason | undefined;
  const work: Work = {
    ctx,
    keyring,
    policy: { legacyRetired },
    dryRun: job.dryRun,
    jobKeysConfigured: async () => (await jobKeysMissing(keyring, job)).length === 0,
  };
  for (let next = await rows.next(); next; next = await rows.next()) {
    const { row, size } = next;
    const { shape, olderShape } = classify(row, job.keyIds);
    const writes = !job.dryRun && (olderShape || (shape !== null && shape.kind !== "current"));
    const overDerivations = keyring.pbkdf2Runs + derivationsNeeded(row, shape, keyring) > job.budgets.derivations;
    if (rows.handled > 0 && (overDerivations || !rows.fits(writes ? size : 0))) {
      stoppedEarly = true;
      break;
    }
    const outcome = await rewriteRow(work, row, shape, olderShape);
    if (typeof outcome === "object" && "missingKey" in outcome) {
      const missingKeyIds = await jobKeysMissing(keyring, job);
      pause = {
        code: "KEY_MISSING",
        missingKeyIds,
        table: row.table,
        rowId: row.doc._id,
        message:
          `Paused at ${row.table} ${row.doc._id}, left untouched: a key this job started with is no longer configured ` +
          `(key id ${missingKeyIds.join(", ")}; OLD_MASTER_KEY was changed or emptied during the job). Nothing after it was written. ` +
          `Put the key back in OLD_MASTER_KEY (comma-separated), then run ${ROTATE_COMMAND}`,
      };
      stoppedEarly = true;
      break;
    }
    counts.scanned++;
    if (typeof outcome === "string") {
      counts[outcome]++;
      if (writes && outcome !== "alreadyCurrent") rows.bytes += size; // the patch read the document again
    } else {
      counts.failed++;
      // Bounded: a few lines per batch; keyRotation:failures lists every row.
      if (counts.failed <= MAX_FAILURE_LOG_LINES) console.warn(`reencryption ${job._id}: ${row.table} ${row.doc._id} left unchanged: ${outcome.failed}`);
      await ctx.db.insert("reencryptionFailures", { jobId: job._id, table: row.table, rowId: row.doc._id, code: outcome.failed, ...(outcome.keyId ? { keyId: outcome.keyId } : {}), at: Date.now() });
    }
    rows.handled++;
    cursor = positionOf(row);
  }
  if (counts.failed > MAX_FAILURE_LOG_LINES) console.warn(`reencryption ${job._id}: ${counts.failed - MAX_FAILURE_LOG_LINES} more rows left unchanged in this batch`);
  return { handled: rows.handled, derivations: keyring.pbkdf2Runs, bytes: rows.bytes, cursor, tableDone: !stoppedEarly && rows.tableDone, tally: emptyTally(), counts, ...(pause ? { pause } : {}) };
}

/** The unusable OLD_MASTER_KEY entries, which may be the missing keys (positions only; derives nothing). */
function unusableNote(): string {
  const entries = loadKeyring(null).invalidPrevious.map(({ entry }) => `OLD_MASTER_KEY (entry ${entry})`);
  return entries.length > 0 ? `. ${entries.join(", ")} is unusable and may be one of them` : "";
}

/**
 * Whether the job must stop at the end of its scan, before any write: rows
 * under key ids no configured key has (unless allowMissingKeys), or an
 * original-format value none of the configured keys opens (the original
 * had one key, so one value tells; costs one PBKDF2 per key tried).
 */
async function refusalAfterScan(ctx: MutationCtx, job: Job): Promise<StopReason | null> {
  if (job.allowMissingKeys) return null;
  if (job.scan.unknownKey > 0) {
    const known = new Set([...job.keyIds.v2, ...job.keyIds.v1]);
    const missingKeyIds = job.scan.keyIds.filter(({ keyId }) => !known.has(keyId)).map(({ keyId }) => keyId);
    return {
      code: "UNKNOWN_KEY_IDS",
      missingKeyIds,
      message:
        `${job.scan.unknownKey} rows are under master key ids no configured key has: ${missingKeyIds.join(", ") || "(see inventory)"}. ` +
        "Nothing was written. Add the key(s) with these ids to OLD_MASTER_KEY (comma-separated; keyRotation.started audit entries list " +
        `the ids configured then), then run ${ROTATE_COMMAND}. To give those rows up instead: ${ROTATE_COMMAND} '{"allowMissingKeys": true}'` +
        unusableNote(),
    };
  }
  if (!job.originalProbe) return null;
  const { table, rowId } = job.originalProbe;
  const doc = await ctx.db.get(table as "users", rowId as Id<"users">);
  if (!doc) return null;
  // The row's own work as a dry run: decrypts under the registry's policy, writes nothing.
  const keyring = loadKeyring((await readEncryptionSettings(ctx.db)).rootSalt);
  const row = { table, doc } as JobRow;
  const { shape, olderShape } = classify(row, job.keyIds);
  const work = { ctx, keyring, policy: { legacyRetired: false }, dryRun: true, jobKeysConfigured: async () => true };
  const outcome = await rewriteRow(work, row, shape, olderShape);
  if (typeof outcome === "object" && "failed" in outcome && outcome.failed === "DECRYPTION_FAILED") {
    return {
      code: "ORIGINAL_KEY_MISSING",
      message:
        `No configured key opens the values in the original Dashtray's format (the first: ${table} ${rowId}; ${job.scan.originalFormat} in all). ` +
        "Nothing was written. Add the original deployment's master key to OLD_MASTER_KEY (comma-separated), " +
        `then run ${ROTATE_COMMAND}`,
    };
  }
  return null;
}

/** Ends a job: done (retiring the original format when none is left), stopped or paused. */
export async function endJob(ctx: MutationCtx, job: Job, stopReason?: StopReason): Promise<void> {
  const now = Date.now();
  const retire = !stopReason && !job.dryRun && job.verification.originalFormat === 0 && job.counts.failed === 0;
  if (retire) await retireLegacyFormat(ctx.db, now);
  const status = !stopReason ? "done" : stopReason.code === "KEY_MISSING" ? "paused" : "stopped";
  await ctx.db.patch("reencryptionJobs", job._id, { status, ...(stopReason ? { stopReason } : {}), ...(retire ? { legacyRetiredAt: now } : {}), finishedAt: now, updatedAt: now });
  const { reEncrypted, migrated, failed, alreadyCurrent } = job.counts;
  // Operators watch `npx convex logs`: ids, counts and codes only.
  const summary = `${stopReason ? `${status}: ${stopReason.code}` : "done"}: ${reEncrypted} re-encrypted, ${migrated} migrated, ${alreadyCurrent} already current, ${failed} failed`;
  console.info(`reencryption ${job._id}${job.dryRun ? " (dry run)" : ""} ${summary}`);
  if (!job.dryRun) await recordAudit(ctx, { action: "keyRotation.finished", targetTable: "reencryptionJobs", targetId: job._id, detail: summary });
}

/** Records a batch in the job, then schedules the next batch, moves to the next stage, or ends the job. */
async function advance(ctx: MutationCtx, job: Job, batch: BatchResult): Promise<void> {
  const now = Date.now();
  const updated: Job = {
    ...job,
    scan: job.phase === "scan" ? addTallies(job.scan, batch.tally) : job.scan,
    verification: job.phase === "verify" ? addTallies(job.verification, batch.tally) : job.verification,
    counts: Object.fromEntries(Object.entries(job.counts).map(([key, n]) => [key, n + batch.counts[key as keyof JobCounts]])) as JobCounts,
    ...(batch.probe ? { originalProbe: batch.probe } : {}),
    batches: job.batches + 1,
    maxBatchRows: Math.max(job.maxBatchRows, batch.handled),
    maxBatchDerivations: Math.max(job.maxBatchDerivations, batch.derivations),
    maxBatchBytes: Math.max(job.maxBatchBytes, batch.bytes),
    cursor: batch.cursor,
    updatedAt: now,
  };
  const nextTable = JOB_TABLES[JOB_TABLES.indexOf(job.table) + 1];
  const nextPhase = nextTable ? job.phase : job.phase === "scan" ? "rewrite" : job.phase === "rewrite" && !job.dryRun ? "verify" : null;
  const refusal = batch.tableDone && job.phase === "scan" && !nextTable ? await refusalAfterScan(ctx, updated) : null;
  const stop = batch.pause ?? refusal;
  if (batch.tableDone && nextPhase && !stop) {
    if (nextPhase !== job.phase) updated.phaseStartedAt = now;
    Object.assign(updated, { phase: nextPhase, table: nextTable ?? JOB_TABLES[0], cursor: undefined });
  }
  const { _id, _creationTime, ...fields } = updated;
  await ctx.db.replace("reencryptionJobs", _id, fields);
  if (stop) return endJob(ctx, updated, stop);
  if (batch.tableDone && !nextPhase) return endJob(ctx, updated);
  await ctx.db.patch("reencryptionJobs", _id, { nextBatchId: await scheduleBatch(ctx, _id, job.sequence) });
}

/** One batch of a job (keyRotation:runBatch). */
export async function runJobBatch(ctx: MutationCtx, jobId: Id<"reencryptionJobs">, sequence: number): Promise<null> {
  const job = await ctx.db.get("reencryptionJobs", jobId);
  // A chain replaced by a resume, or a finished job: nothing to do.
  if (!job || job.status !== "running" || job.sequence !== sequence) return null;
  let batch: BatchResult;
  if (job.phase === "rewrite") {
    const { rootSalt, legacyRetired } = await readEncryptionSettings(ctx.db);
    // Loaded (deriving nothing) only where crypto runs; the current root (one PBKDF2) is needed to encrypt anyway.
    const keyring = loadKeyring(rootSalt).useKeyIdHints(job.keyIds);
    if ((await keyring.current.keyId()) !== job.keyIds.v2[0]) {
      const message = `MASTER_ENCRYPTION_KEY changed while the job ran: keep the key it had in OLD_MASTER_KEY and run ${ROTATE_COMMAND} (a new job)`;
      await endJob(ctx, job, { code: "KEYRING_CHANGED", message });
      return null;
    }
    batch = await rewriteBatch(ctx, job, keyring, legacyRetired);
  } else {
    batch = await countBatch(ctx, job);
  }
  console.info(`reencryption ${job._id} batch ${job.batches + 1} (${job.phase} ${job.table}): ${batch.handled} rows, ${batch.bytes} bytes, ${batch.derivations} key derivations`);
  await advance(ctx, job, batch);
  return null;
}

/** Restarts a job whose batch chain died, from its cursor, with its budgets halved (a batch that hit a limit is retried smaller). */
export async function resumeJob(ctx: MutationCtx, job: Job, batchState: BatchState, by: "rotate" | "cron"): Promise<string> {
  const sequence = job.sequence + 1;
  const before = job.budgets;
  const budgets = { rows: Math.max(1, Math.floor(before.rows / 2)), bytes: Math.max(MIN_BYTE_BUDGET, Math.floor(before.bytes / 2)), derivations: Math.max(1, Math.floor(before.derivations / 2)) };
  const now = Date.now();
  await ctx.db.patch("reencryptionJobs", job._id, {
    sequence,
    nextBatchId: await scheduleBatch(ctx, job._id, sequence),
    budgets,
    resumes: job.resumes + 1,
    updatedAt: now,
    ...(by === "cron" ? { autoResumes: job.autoResumes + 1, lastAutoResumeAt: now, batchesAtAutoResume: job.batches } : { batchesAtAutoResume: undefined, autoResumeGaveUpAt: undefined }),
  });
  const change = `budgets per batch ${before.derivations} -> ${budgets.derivations} derivations, ${before.rows} -> ${budgets.rows} rows, ${before.bytes} -> ${budgets.bytes} bytes`;
  console.info(`reencryption ${job._id} resumed by ${by} (its batch was ${batchState}): ${change}`);
  return `Its batch chain had stopped (batch ${batchState}): resumed from where it was, ${change}. Watch: npx convex run keyRotation:status`;
}

/** Whether a resume has nothing left to halve: a chain that still dies there does not die from its size. */
export function atMinimumBudgets(job: Job): boolean {
  return job.budgets.derivations <= 1 && job.budgets.rows <= 1 && job.budgets.bytes <= MIN_BYTE_BUDGET;
}
