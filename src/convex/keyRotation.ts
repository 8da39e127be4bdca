/**
 * Operators' commands for the one re-encryption job (reencryption/job.ts): rotate, status,
 * failures, and the batch and cron entry points (runbook: docs/key-rotation.md).
 */
import { paginationOptsValidator, paginationResultValidator } from "convex/server";
import { v } from "convex/values";
import { internal } from "./_generated/api";
import type { Id } from "./_generated/dataModel";
import { internalAction, internalMutation, internalQuery, type ActionCtx, type MutationCtx } from "./_generated/server";
import { recordAudit } from "./audit/trail";
import { appError } from "./errors";
import { DEFAULT_BUDGETS, atMinimumBudgets, batchStateOf, emptyCounts, endJob, resumeJob, ROTATE_COMMAND, runJobBatch, scheduleBatch, type Job } from "./reencryption/job";
import { addTallies, emptyTally, SECRET_ROW_TABLES, tallyPage, type SecretTable } from "./reencryption/rows";
import { inventoryOf, nextStep, progressOf, readConfiguredKeys, safeToRemoveOldKey } from "./reencryption/status";
import { cursorValidator, failureFields, jobStatusValidator, statusValidator, tallyValidator, type Status, type Tally } from "./reencryption/validators";
import { loadKeyringForWrite, readEncryptionSettings, recordKeyIdOrder, rootSaltEvidence, weakMasterKeyError } from "./storedSecrets/encryption";
import { keyIdOrderValidator } from "./validators";

/** Most OLD_MASTER_KEY entries a job starts with: 2 PBKDF2 ids per key in one mutation, so 1 + 3 keys are 8 runs (~0.3 s). */
export const MAX_PREVIOUS_KEYS = 3;
/** Failures status lists (all of them: keyRotation:failures). */
export const FAILURE_SAMPLE_SIZE = 20;

export { MAX_BYTES_PER_BATCH, MAX_DERIVATIONS_PER_BATCH, MAX_ROWS_PER_BATCH } from "./reencryption/job";

export const startResult = v.object({
  jobId: v.id("reencryptionJobs"),
  outcome: v.union(v.literal("started"), v.literal("joined"), v.literal("resumed")),
  dryRun: v.boolean(),
  plan: v.string(),
});

/**
 * Starts the job, joins the running one, or resumes one whose chain died. Checks the keys
 * before any row is touched (step 2 not done, weak key, too many keys, root salt missing),
 * then computes the v2 and v1 id of every configured key (2 PBKDF2 each).
 */
export async function startJob(ctx: MutationCtx, dryRun: boolean, allowMissingKeys: boolean) {
  const keyring = await loadKeyringForWrite(ctx);
  if (keyring.previousIncludesCurrent) {
    throw appError(
      "INVALID_ARGUMENT",
      "Old key saved, ready for a new MASTER_ENCRYPTION_KEY: OLD_MASTER_KEY holds the current MASTER_ENCRYPTION_KEY, so the job would rotate nothing. " +
        "Next: step 2 of docs/key-rotation.md (set MASTER_ENCRYPTION_KEY to a new key from openssl rand -hex 32), then run it",
    );
  }
  const weak = keyring.current.weakReasons();
  if (weak.length > 0 && keyring.previous.length > 0) throw weakMasterKeyError(weak, "a rotation would move every secret onto it");
  if (keyring.previous.length > MAX_PREVIOUS_KEYS) {
    throw appError(
      "INVALID_ARGUMENT",
      `OLD_MASTER_KEY lists ${keyring.previous.length} usable keys; a job can start with at most ${MAX_PREVIOUS_KEYS}: ` +
        "remove the keys keyRotation:status's inventory shows no value under, then run it again",
    );
  }
  const currentKeyId = await keyring.current.keyId();
  const latest = await ctx.db.query("reencryptionJobs").order("desc").first();
  if (latest?.status === "running") {
    const batchState = await batchStateOf(ctx, latest);
    const alive = batchState === "pending" || batchState === "inProgress";
    if (latest.keyIds.v2[0] !== currentKeyId) {
      await endJob(ctx, latest, { code: "KEYRING_CHANGED", message: "MASTER_ENCRYPTION_KEY changed while the job ran; a new job replaced it" });
    } else if (latest.dryRun !== dryRun && alive) {
      throw appError("CONFLICT", `A ${latest.dryRun ? "dry run" : "job"} is running (${latest._id}); wait for it to finish (keyRotation:status)`);
    } else if (latest.dryRun !== dryRun) {
      await endJob(ctx, latest, { code: "REPLACED", message: `its batches had stopped (${batchState}) when a ${dryRun ? "dry run" : "job"} was started` });
    } else if (alive) {
      const { percent, done, total } = progressOf(latest);
      const where = percent === null ? `${done} rows scanned` : `${percent}% of ${total} rows`;
      return { jobId: latest._id, outcome: "joined" as const, dryRun, plan: `Joined the running ${dryRun ? "dry run" : "job"} (phase ${latest.phase}, ${where}). Watch: npx convex run keyRotation:status` };
    } else {
      return { jobId: latest._id, outcome: "resumed" as const, dryRun, plan: await resumeJob(ctx, latest, batchState, "rotate") };
    }
  }
  const previous = await Promise.all(keyring.previous.map((key) => key.keyId()));
  const keyIds = { v2: [currentKeyId, ...previous], v1: await Promise.all(keyring.all.map((key) => key.v1KeyId())) };
  await recordKeyIdOrder(ctx.db, keyIds);
  const now = Date.now();
  const zero = { batches: 0, maxBatchRows: 0, maxBatchDerivations: 0, maxBatchBytes: 0, resumes: 0, autoResumes: 0, sequence: 0 };
  const fields: Omit<Job, "_id" | "_creationTime"> = {
    ...{ ...zero, status: "running", phase: "scan", table: "connections", dryRun, keyIds, budgets: DEFAULT_BUDGETS } as const,
    ...(allowMissingKeys ? { allowMissingKeys } : {}),
    ...{ scan: emptyTally(), verification: emptyTally(), counts: emptyCounts(), startedAt: now, phaseStartedAt: now, updatedAt: now },
  };
  const jobId = await ctx.db.insert("reencryptionJobs", fields);
  await ctx.db.patch("reencryptionJobs", jobId, { nextBatchId: await scheduleBatch(ctx, jobId, 0) });
  if (!dryRun) {
    const detail = `current key ${currentKeyId}; previous keys ${previous.join(", ") || "none"}`;
    await recordAudit(ctx, { action: "keyRotation.started", targetTable: "reencryptionJobs", targetId: jobId, detail });
  }
  const moves = previous.length > 0 ? `re-encrypt values under OLD_MASTER_KEY's keys (${previous.join(", ")}) to MASTER_ENCRYPTION_KEY (${currentKeyId}), ` : "";
  const plan =
    `${dryRun ? "Dry run (writes nothing): " : ""}scan every registered secret by its header; stop before any write if a value is under a key ` +
    `that is not configured; then ${moves}migrate older formats, plaintext and the original Dashtray's rows${dryRun ? "" : ", then verify"}. Watch: npx convex run keyRotation:status`;
  return { jobId, outcome: "started" as const, dryRun, plan };
}

export const rotate = internalMutation({
  args: { dryRun: v.optional(v.boolean()), allowMissingKeys: v.optional(v.boolean()) },
  returns: startResult,
  handler: (ctx, { dryRun = false, allowMissingKeys = false }) => startJob(ctx, dryRun, allowMissingKeys),
});

/** One batch of the job; scheduled by `rotate` and by the batch before it. */
export const runBatch = internalMutation({
  args: { jobId: v.id("reencryptionJobs"), sequence: v.number() },
  returns: v.null(),
  handler: (ctx, { jobId, sequence }) => runJobBatch(ctx, jobId, sequence),
});

/**
 * Cron (every 5 minutes): resumes the running job whose batch chain died,
 * halving its budgets; gives up (logging once) when it died again without a
 * batch at the smallest budgets. With no job running it reads one document.
 */
export const resumeStalled = internalMutation({
  args: {},
  returns: v.null(),
  handler: async (ctx) => {
    const job = await ctx.db.query("reencryptionJobs").order("desc").first();
    if (!job || job.status !== "running" || job.autoResumeGaveUpAt !== undefined) return null;
    const batchState = await batchStateOf(ctx, job);
    if (batchState === "pending" || batchState === "inProgress") return null;
    if (job.batchesAtAutoResume === job.batches && atMinimumBudgets(job)) {
      await ctx.db.patch("reencryptionJobs", job._id, { autoResumeGaveUpAt: Date.now() });
      console.error(`reencryption ${job._id}: batches keep failing at the smallest budgets; not resuming automatically any more. Read the error in the logs, fix it, then run ${ROTATE_COMMAND}`);
      return null;
    }
    await resumeJob(ctx, job, batchState, "cron");
    return null;
  },
});

/** Status's first read: root salt (or why it should exist), and the job with its batch state and first failures. */
export const statusHead = internalQuery({
  args: { jobId: v.optional(v.id("reencryptionJobs")) },
  returns: v.object({ rootSalt: v.union(v.string(), v.null()), rootSaltMissing: v.union(v.string(), v.null()), job: v.union(jobStatusValidator, v.null()) }),
  handler: async (ctx, { jobId }) => {
    const { rootSalt } = await readEncryptionSettings(ctx.db);
    const rootSaltMissing = rootSalt === null ? await rootSaltEvidence(ctx.db) : null;
    const job = jobId ? await ctx.db.get("reencryptionJobs", jobId) : await ctx.db.query("reencryptionJobs").order("desc").first();
    if (!job) return { rootSalt, rootSaltMissing, job: null };
    const failures = await ctx.db.query("reencryptionFailures").withIndex("by_jobId", (q) => q.eq("jobId", job._id)).take(FAILURE_SAMPLE_SIZE);
    const failureSample = failures.map(({ table, rowId, code, keyId }) => ({ table, rowId, code, ...(keyId ? { keyId } : {}) }));
    return { rootSalt, rootSaltMissing, job: { ...job, progress: progressOf(job), batchState: await batchStateOf(ctx, job), failureSample } };
  },
});

/** Rows and bytes one inventory page reads (a query may read 32k documents and 16 MiB). */
const INVENTORY_PAGE = { rows: 8000, bytes: 8 * 1024 * 1024 };

/** One page of status's inventory: a table's rows after `cursor`, classified by header against `keyIds` (no crypto). */
export const inventoryPage = internalQuery({
  args: { table: v.string(), cursor: v.optional(cursorValidator), keyIds: keyIdOrderValidator },
  returns: v.object({ tally: tallyValidator, cursor: v.optional(cursorValidator), done: v.boolean() }),
  handler: async (ctx, { table, cursor, keyIds }) => {
    const page = await tallyPage(ctx.db, table as SecretTable, cursor, keyIds, INVENTORY_PAGE);
    return { tally: page.tally, ...(page.cursor ? { cursor: page.cursor } : {}), done: page.done };
  },
});

/**
 * The keys configured now, a fresh inventory of every registered field
 * (read now, page by page), safeToRemoveOldKey from it, the next step, and
 * the latest job (or `jobId`). Costs one PBKDF2 per configured key (its v2
 * id), plus one per key when v1 values exist, and one query per ~8 MiB of secrets.
 */
export async function readStatus(ctx: ActionCtx, jobId?: Id<"reencryptionJobs">): Promise<Status> {
  const head = await ctx.runQuery(internal.keyRotation.statusHead, jobId ? { jobId } : {});
  const keys = await readConfiguredKeys(head.rootSalt, head.rootSaltMissing);
  let inventory = null;
  if (keys.keyring) {
    const keyIds = { v2: [keys.state.current, ...keys.state.previous].filter((id): id is string => id !== null), v1: [] };
    let tally: Tally = emptyTally();
    let pages = 0;
    for (const table of SECRET_ROW_TABLES) {
      let cursor: { group: string; creationTime: number } | undefined;
      for (let done = false; !done; pages++) {
        const page: { tally: Tally; cursor?: typeof cursor; done: boolean } = await ctx.runQuery(internal.keyRotation.inventoryPage, { table, keyIds, ...(cursor ? { cursor } : {}) });
        tally = addTallies(tally, page.tally);
        ({ cursor, done } = page);
      }
    }
    inventory = await inventoryOf(tally, keys, pages);
  }
  const job = head.job;
  const safe = safeToRemoveOldKey(keys.state, inventory, job);
  const running = job ? { doc: job, batchAlive: job.batchState === "pending" || job.batchState === "inProgress" } : null;
  return { keys: keys.state, inventory, safeToRemoveOldKey: safe, next: nextStep(keys.state, inventory, running, safe), job };
}

export const status = internalAction({
  args: { jobId: v.optional(v.id("reencryptionJobs")) },
  returns: statusValidator,
  handler: (ctx, { jobId }) => readStatus(ctx, jobId),
});

/** Every failure of a job, a page at a time (ids and codes only). */
export const failures = internalQuery({
  args: { jobId: v.id("reencryptionJobs"), paginationOpts: paginationOptsValidator },
  returns: paginationResultValidator(v.object({ _id: v.id("reencryptionFailures"), _creationTime: v.number(), ...failureFields })),
  handler: (ctx, { jobId, paginationOpts }) => ctx.db.query("reencryptionFailures").withIndex("by_jobId", (q) => q.eq("jobId", jobId)).paginate(paginationOpts),
});
