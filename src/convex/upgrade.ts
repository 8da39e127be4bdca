/**
 * The upgrade from the original Dashtray's data, run by an operator with
 * `npx convex run upgrade:run` (runbook: docs/upgrade.md). It brings every
 * row the original wrote to the current shape (upgrade/rows.ts): AI keys
 * moved from users to aiKeys, names, hints and API key prefixes filled in,
 * keyHashAlgorithm recorded, legacy ciphertext re-encrypted in format v2
 * under the current key, plaintext encrypted (or hashed) and removed.
 *
 * Like keyRotation.ts, the job is a chain of self-scheduling mutations
 * (batches), each bounded by rows (1,000), bytes read (8 MiB, a rewritten
 * row counting twice) and, for migrate batches, PBKDF2 runs (8, counted by
 * the batch's keyring: one for the current key's root, then one per (salt,
 * key tried) for legacy values). The cursor is the index position of the
 * last row handled; a batch that throws rolls back as a whole, and running
 * `upgrade:run` again resumes from the cursor with halved budgets. A row
 * that cannot be upgraded is recorded in upgradeFailures and left untouched.
 *
 * Two phases: "migrate" (connections, users, aiKeys, apiKeys), then
 * "verify", which counts from the rows alone what is still in an older
 * shape. When verification finds no value in the original format left, the
 * job sets encryptionSettings.legacyRetiredAt: from then on every
 * decrypting path refuses that format (it binds nothing to its row).
 */
import { paginationOptsValidator, paginationResultValidator } from "convex/server";
import { v } from "convex/values";
import { internal } from "./_generated/api";
import type { Doc, Id } from "./_generated/dataModel";
import { internalMutation, internalQuery, type MutationCtx, type QueryCtx } from "./_generated/server";
import { recordAudit } from "./audit";
import { MAX_BYTES_PER_BATCH, MAX_DERIVATIONS_PER_BATCH, MAX_ROWS_PER_BATCH } from "./keyRotation";
import type { Keyring } from "./lib/keyring";
import { BudgetedRowReader, MIN_BYTE_BUDGET, scheduledBatchState, sumCounts } from "./rotation/batchReader";
import { loadKeyring, loadKeyringForWrite, readEncryptionSettings, retireLegacyFormat, type LegacyPolicy } from "./secrets";
import {
  countRemaining,
  derivationsNeeded,
  emptyRemaining,
  hasWork,
  pendingWork,
  readUpgradeRows,
  upgradePositionOf,
  upgradeRow,
} from "./upgrade/rows";
import {
  upgradeFailureFields,
  upgradeStatusValidator,
  type RotationBatchState,
  type RotationCursor,
  type UpgradeCounts,
  type UpgradePhase,
  type UpgradeRemaining,
  type UpgradeTable,
} from "./validators";

/** How many failures upgrade:status lists (all of them: upgrade:failures). */
export const UPGRADE_FAILURE_SAMPLE_SIZE = 20;

const TABLES = ["connections", "users", "aiKeys", "apiKeys"] as const satisfies readonly UpgradeTable[];

type Job = Doc<"upgradeJobs">;

function emptyCounts(): UpgradeCounts {
  return { scanned: 0, upgraded: 0, alreadyCurrent: 0, failed: 0 };
}

/** Everything still in an older shape (rows visited excluded). */
function remainingTotal(remaining: UpgradeRemaining): number {
  const { rows: _rows, ...left } = remaining;
  return Object.values(left).reduce((sum, n) => sum + n, 0);
}

/** The stage after the current one, or null when the job is complete. */
function nextStage(job: Job): { phase: UpgradePhase; table: UpgradeTable } | null {
  const nextTable = TABLES[TABLES.indexOf(job.table) + 1];
  if (nextTable !== undefined) return { phase: job.phase, table: nextTable };
  return job.phase === "migrate" ? { phase: "verify", table: TABLES[0] } : null;
}

async function latestJob(ctx: QueryCtx): Promise<Job | null> {
  return ctx.db.query("upgradeJobs").order("desc").first();
}

function batchStateOf(ctx: QueryCtx, job: Job): Promise<RotationBatchState> {
  return scheduledBatchState(ctx.db, job.nextBatchId);
}

function scheduleBatch(ctx: MutationCtx, jobId: Id<"upgradeJobs">, sequence: number) {
  return ctx.scheduler.runAfter(0, internal.upgrade.runBatch, { jobId, sequence });
}

/** What one batch did, applied to the job by `advance`. */
interface BatchResult {
  handled: number;
  derivations: number;
  bytes: number;
  cursor: RotationCursor | undefined;
  tableDone: boolean;
  counts: UpgradeCounts;
  remaining: UpgradeRemaining;
}

/**
 * One batch of the job's phase over its table: reads rows page by page after
 * the cursor (pages sized from the largest row seen, so a page stays within
 * the byte budget) and, in the migrate phase, upgrades each row; stops when
 * a budget is spent, always after at least one row. `keyring` is null in
 * the verify phase, which only counts.
 */
async function runStage(ctx: MutationCtx, job: Job, crypto: { keyring: Keyring; policy: LegacyPolicy } | null): Promise<BatchResult> {
  const budget = { rows: job.rowBudget, bytes: job.byteBudget, derivations: job.derivationBudget };
  const reader = new BudgetedRowReader(
    (after: RotationCursor | undefined, limit: number) => readUpgradeRows(ctx.db, job.table, after, limit),
    upgradePositionOf,
    job.cursor,
    budget,
    crypto ? 2 : 1,
  );
  const counts = emptyCounts();
  let remaining = emptyRemaining();
  let cursor = job.cursor;
  let stoppedEarly = false;
  for (let next = await reader.next(); next; next = await reader.next()) {
    const { row, size } = next;
    const work = pendingWork(row);
    if (!crypto) {
      remaining = countRemaining(remaining, work);
    } else {
      const overDerivations = crypto.keyring.pbkdf2Runs + derivationsNeeded(row, work, crypto.keyring) > budget.derivations;
      if (reader.handled > 0 && (overDerivations || !reader.fits(hasWork(work) ? size : 0))) {
        stoppedEarly = true;
        break;
      }
      const outcome = await upgradeRow(ctx, row, crypto.keyring, crypto.policy);
      counts.scanned++;
      if (typeof outcome === "string") {
        counts[outcome]++;
        // The patch read the document again.
        if (outcome === "upgraded") reader.bytes += size;
      } else {
        counts.failed++;
        console.warn(`upgrade ${job._id}: ${row.table} ${row.doc._id} left unchanged: ${outcome.failed}`);
        await ctx.db.insert("upgradeFailures", {
          jobId: job._id,
          table: row.table,
          rowId: row.doc._id,
          code: outcome.failed,
          at: Date.now(),
        });
      }
    }
    reader.handled++;
    cursor = upgradePositionOf(row);
  }
  return {
    handled: reader.handled,
    derivations: crypto?.keyring.pbkdf2Runs ?? 0,
    bytes: reader.bytes,
    cursor,
    tableDone: !stoppedEarly && reader.tableDone,
    counts,
    remaining,
  };
}

async function endJob(ctx: MutationCtx, job: Job, stopReason?: Job["stopReason"]): Promise<void> {
  const now = Date.now();
  // Retired only by a completed job whose verification found no value in the original format.
  const retire = !stopReason && job.remaining.legacyCiphertext === 0;
  if (retire) await retireLegacyFormat(ctx.db, now);
  await ctx.db.patch("upgradeJobs", job._id, {
    status: stopReason ? "stopped" : "done",
    ...(stopReason ? { stopReason } : {}),
    ...(retire ? { legacyRetiredAt: now } : {}),
    finishedAt: now,
    updatedAt: now,
  });
  const { upgraded, failed } = job.counts;
  const summary = stopReason
    ? `stopped: ${stopReason.code}`
    : `done: ${upgraded} upgraded, ${failed} failed, ${remainingTotal(job.remaining)} remaining` +
      (retire ? "; original format retired" : "");
  // Operators watch `npx convex logs`: ids, counts and codes only.
  console.info(`upgrade ${job._id} ${summary}`);
  await recordAudit(ctx, { action: "upgrade.finished", targetTable: "upgradeJobs", targetId: job._id, detail: summary });
}

/** Records a batch in the job, then schedules the next batch, moves to the next stage, or ends the job. */
async function advance(ctx: MutationCtx, job: Job, batch: BatchResult): Promise<void> {
  const updated: Job = {
    ...job,
    counts: sumCounts(job.counts, batch.counts),
    remaining: job.phase === "verify" ? sumCounts(job.remaining, batch.remaining) : job.remaining,
    batches: job.batches + 1,
    maxBatchRows: Math.max(job.maxBatchRows, batch.handled),
    maxBatchDerivations: Math.max(job.maxBatchDerivations, batch.derivations),
    maxBatchBytes: Math.max(job.maxBatchBytes, batch.bytes),
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
  await ctx.db.replace("upgradeJobs", _id, fields);
  if (next === null) return endJob(ctx, updated);
  await ctx.db.patch("upgradeJobs", _id, { nextBatchId: await scheduleBatch(ctx, _id, job.sequence) });
}

/** One batch of an upgrade job; scheduled by `run` and by the batch before it. */
export const runBatch = internalMutation({
  args: { jobId: v.id("upgradeJobs"), sequence: v.number() },
  returns: v.null(),
  handler: async (ctx, { jobId, sequence }) => {
    const job = await ctx.db.get("upgradeJobs", jobId);
    // A chain replaced by a resume, or a finished job: nothing to do.
    if (!job || job.status !== "running" || job.sequence !== sequence) return null;
    let batch: BatchResult;
    if (job.phase === "migrate") {
      const { rootSalt, legacyRetired } = await readEncryptionSettings(ctx.db);
      const keyring = loadKeyring(rootSalt);
      // The current root (one PBKDF2) is needed to encrypt anyway; its id tells whether the key changed.
      if ((await keyring.current.keyId()) !== job.currentKeyId) {
        await endJob(ctx, job, {
          code: "KEYRING_CHANGED",
          message: "MASTER_ENCRYPTION_KEY changed while the job ran: run upgrade:run again to start a new job",
        });
        return null;
      }
      batch = await runStage(ctx, job, { keyring, policy: { legacyRetired } });
    } else {
      batch = await runStage(ctx, job, null);
    }
    console.info(
      `upgrade ${job._id} batch ${job.batches + 1} (${job.phase} ${job.table}): ${batch.handled} rows, ` +
        `${batch.bytes} bytes read, ${batch.derivations} key derivations`,
    );
    await advance(ctx, job, batch);
    return null;
  },
});

/**
 * Starts an upgrade job, or returns the running one: joins a job whose batch
 * chain is alive, resumes (from its cursor, with halved derivation, row and
 * byte budgets) one whose chain died, and replaces one started under
 * another MASTER_ENCRYPTION_KEY. Running it again after a finished job
 * starts a new job, which skips rows already current without crypto.
 * Costs one PBKDF2 run (the current key's id).
 */
export const run = internalMutation({
  args: {},
  returns: v.object({
    jobId: v.id("upgradeJobs"),
    outcome: v.union(v.literal("started"), v.literal("joined"), v.literal("resumed")),
  }),
  handler: async (ctx) => {
    const keyring = await loadKeyringForWrite(ctx);
    const currentKeyId = await keyring.current.keyId();
    const latest = await latestJob(ctx);
    if (latest?.status === "running") {
      const batchState = await batchStateOf(ctx, latest);
      if (latest.currentKeyId !== currentKeyId) {
        await endJob(ctx, latest, {
          code: "KEYRING_CHANGED",
          message: "MASTER_ENCRYPTION_KEY changed while the job ran; a new job replaced it",
        });
      } else if (batchState === "pending" || batchState === "inProgress") {
        return { jobId: latest._id, outcome: "joined" as const };
      } else {
        const sequence = latest.sequence + 1;
        const budgets = {
          derivationBudget: Math.max(1, Math.floor(latest.derivationBudget / 2)),
          rowBudget: Math.max(1, Math.floor(latest.rowBudget / 2)),
          byteBudget: Math.max(MIN_BYTE_BUDGET, Math.floor(latest.byteBudget / 2)),
        };
        const nextBatchId = await scheduleBatch(ctx, latest._id, sequence);
        await ctx.db.patch("upgradeJobs", latest._id, {
          sequence,
          nextBatchId,
          ...budgets,
          resumes: latest.resumes + 1,
          updatedAt: Date.now(),
        });
        console.info(
          `upgrade ${latest._id} resumed (its batch was ${batchState}): budgets per batch ` +
            `${budgets.derivationBudget} derivations, ${budgets.rowBudget} rows, ${budgets.byteBudget} bytes`,
        );
        return { jobId: latest._id, outcome: "resumed" as const };
      }
    }
    const now = Date.now();
    const jobId = await ctx.db.insert("upgradeJobs", {
      status: "running",
      phase: "migrate",
      table: TABLES[0],
      sequence: 0,
      currentKeyId,
      counts: emptyCounts(),
      remaining: emptyRemaining(),
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
    await ctx.db.patch("upgradeJobs", jobId, { nextBatchId: await scheduleBatch(ctx, jobId, 0) });
    await recordAudit(ctx, { action: "upgrade.started", targetTable: "upgradeJobs", targetId: jobId, detail: `current key ${currentKeyId}` });
    return { jobId, outcome: "started" as const };
  },
});

/**
 * The latest upgrade job (or `jobId`): phase, counts, what verification
 * found remaining, whether the schema can be narrowed, whether the
 * original format is retired, and its first failures.
 */
export const status = internalQuery({
  args: { jobId: v.optional(v.id("upgradeJobs")) },
  returns: v.union(v.null(), upgradeStatusValidator),
  handler: async (ctx, { jobId }) => {
    const job = jobId ? await ctx.db.get("upgradeJobs", jobId) : await latestJob(ctx);
    if (!job) return null;
    const failures = await ctx.db
      .query("upgradeFailures")
      .withIndex("by_jobId", (q) => q.eq("jobId", job._id))
      .take(UPGRADE_FAILURE_SAMPLE_SIZE);
    const total = remainingTotal(job.remaining);
    return {
      ...job,
      batchState: await batchStateOf(ctx, job),
      failureSample: failures.map(({ table, rowId, code }) => ({ table, rowId, code })),
      remainingTotal: total,
      schemaCanBeNarrowed: job.status === "done" && job.counts.failed === 0 && total === 0,
      legacyRetired: (await readEncryptionSettings(ctx.db)).legacyRetired,
    };
  },
});

/** Every failure of an upgrade job, a page at a time (ids and codes only). */
export const failures = internalQuery({
  args: { jobId: v.id("upgradeJobs"), paginationOpts: paginationOptsValidator },
  returns: paginationResultValidator(v.object({ _id: v.id("upgradeFailures"), _creationTime: v.number(), ...upgradeFailureFields })),
  handler: async (ctx, { jobId, paginationOpts }) => {
    return ctx.db
      .query("upgradeFailures")
      .withIndex("by_jobId", (q) => q.eq("jobId", jobId))
      .paginate(paginationOpts);
  },
});
