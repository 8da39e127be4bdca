/**
 * Validators of the re-encryption job (one job for master-key rotation and
 * the upgrade from the original Dashtray) and of what its status returns.
 * Ids and counts only: never a key, a plaintext or a ciphertext.
 */
import { v, type Infer } from "convex/values";
import { keyIdOrderValidator } from "../validators";

/** Tables the job rewrites, in the order it visits them (users before aiKeys: it moves users.aiApiKey there). */
export const jobTableValidator = v.union(v.literal("connections"), v.literal("users"), v.literal("aiKeys"), v.literal("apiKeys"));
export type JobTable = Infer<typeof jobTableValidator>;

/** scan (headers only, no writes) → rewrite (re-encrypt, migrate) → verify (headers again). A dry run stops after rewrite. */
export const jobPhaseValidator = v.union(v.literal("scan"), v.literal("rewrite"), v.literal("verify"));
export type JobPhase = Infer<typeof jobPhaseValidator>;

/** Index position of the last row a batch handled: (salt group id, _creationTime). */
export const cursorValidator = v.object({ group: v.string(), creationTime: v.number() });
export type Cursor = Infer<typeof cursorValidator>;

/** Rows under one master key id (v2 or v1 header). */
export const keyIdRowsValidator = v.object({ keyId: v.string(), format: v.union(v.literal("v2"), v.literal("v1")), rows: v.number() });

/** What stored secrets look like, counted from the rows alone (no crypto). */
export const tallyValidator = v.object({
  rows: v.number(),
  /** v2 under the current key, hashed, or no secret; and nothing else to fill in. */
  upToDate: v.number(),
  /** v2 under a configured previous key. */
  previousKey: v.number(),
  /** v2 or v1 under a key id no configured key has. */
  unknownKey: v.number(),
  /** v1 under a configured key, or the original Dashtray's format (names no key). */
  olderFormat: v.number(),
  /** Of olderFormat: values in the original Dashtray's format. */
  originalFormat: v.number(),
  /** Plaintext left by older versions (credentials, AI keys, unhashed API keys). */
  plaintext: v.number(),
  /** Secret up to date, but the row lacks what the original did not write (name, hints, prefix, hash algorithm, users.aiApiKey). */
  olderShape: v.number(),
  /** Unreadable as stored (malformed, another version, ciphertext and plaintext both present, ...). */
  invalid: v.number(),
  keyIds: v.array(keyIdRowsValidator),
});
export type Tally = Infer<typeof tallyValidator>;

export const jobCountsValidator = v.object({
  scanned: v.number(),
  reEncrypted: v.number(),
  /** v1, original-format or plaintext values moved to v2 under the current key, API keys hashed, rows filled in. */
  migrated: v.number(),
  alreadyCurrent: v.number(),
  failed: v.number(),
});
export type JobCounts = Infer<typeof jobCountsValidator>;

/**
 * Why a job stopped. UNKNOWN_KEY_IDS and ORIGINAL_KEY_MISSING stop it after
 * its scan, before any write; KEY_MISSING pauses it at the first value whose
 * key is no longer configured (that value untouched).
 */
export const stopReasonValidator = v.object({
  code: v.union(
    v.literal("UNKNOWN_KEY_IDS"),
    v.literal("ORIGINAL_KEY_MISSING"),
    v.literal("KEY_MISSING"),
    v.literal("KEYRING_CHANGED"),
    v.literal("REPLACED"),
  ),
  missingKeyIds: v.optional(v.array(v.string())),
  /** KEY_MISSING: the row the job paused at. */
  table: v.optional(jobTableValidator),
  rowId: v.optional(v.string()),
  message: v.string(),
});
export type StopReason = Infer<typeof stopReasonValidator>;

export const batchStateValidator = v.union(
  v.literal("none"),
  v.literal("pending"),
  v.literal("inProgress"),
  v.literal("success"),
  v.literal("failed"),
  v.literal("canceled"),
);
export type BatchState = Infer<typeof batchStateValidator>;

export const budgetsValidator = v.object({ rows: v.number(), bytes: v.number(), derivations: v.number() });
export type Budgets = Infer<typeof budgetsValidator>;

export const jobFields = {
  status: v.union(v.literal("running"), v.literal("done"), v.literal("stopped"), v.literal("paused")),
  dryRun: v.boolean(),
  /** Rows under unknown key ids become failures instead of stopping the job after its scan. */
  allowMissingKeys: v.optional(v.boolean()),
  /** v2 and v1 ids of the keys configured when the job started (index 0: MASTER_ENCRYPTION_KEY). */
  keyIds: keyIdOrderValidator,
  phase: jobPhaseValidator,
  table: jobTableValidator,
  cursor: v.optional(cursorValidator),
  /** Token of the live batch chain; a resume bumps it so a stale chain stops by itself. */
  sequence: v.number(),
  nextBatchId: v.optional(v.id("_scheduled_functions")),
  scan: tallyValidator,
  verification: tallyValidator,
  counts: jobCountsValidator,
  /** The first value in the original format the scan met: the keys are tried on it before any write. */
  originalProbe: v.optional(v.object({ table: jobTableValidator, rowId: v.string() })),
  batches: v.number(),
  maxBatchRows: v.number(),
  maxBatchDerivations: v.number(),
  maxBatchBytes: v.number(),
  /** Per-batch budgets; each resume halves them. */
  budgets: budgetsValidator,
  resumes: v.number(),
  autoResumes: v.number(),
  lastAutoResumeAt: v.optional(v.number()),
  batchesAtAutoResume: v.optional(v.number()),
  autoResumeGaveUpAt: v.optional(v.number()),
  stopReason: v.optional(stopReasonValidator),
  /** Set when this job found no original-format value left and retired the format. */
  legacyRetiredAt: v.optional(v.number()),
  startedAt: v.number(),
  phaseStartedAt: v.number(),
  updatedAt: v.number(),
  finishedAt: v.optional(v.number()),
};

/** A row the job left untouched. */
export const failureFields = {
  jobId: v.id("reencryptionJobs"),
  table: jobTableValidator,
  rowId: v.string(),
  /** Crypto error code (DECRYPTION_FAILED, ...) or a row code (CONFLICTING_FIELDS, INVALID_CREDENTIALS, ...). */
  code: v.string(),
  keyId: v.optional(v.string()),
  at: v.number(),
};

/** The deployment's master keys as configured now (ids only, never a value). */
export const keyringStateValidator = v.object({
  /** v2 id of MASTER_ENCRYPTION_KEY; null when unusable or when there is no root salt yet. */
  current: v.union(v.string(), v.null()),
  previous: v.array(v.string()),
  invalidEntries: v.array(v.object({ variable: v.literal("OLD_MASTER_KEY"), entry: v.number(), code: v.string() })),
  /** OLD_MASTER_KEY holds the current key: step 1 done, the new key not set yet. */
  oldKeySavedOnly: v.boolean(),
  currentKeyWeak: v.array(v.string()),
  error: v.optional(v.object({ code: v.string(), variable: v.string() })),
  message: v.string(),
});
export type KeyringState = Infer<typeof keyringStateValidator>;

/** Every registered field's values now, against the keys configured now. */
export const inventoryValidator = v.object({
  takenAt: v.number(),
  /** Queries it took (each reads within Convex's per-query limits). */
  pages: v.number(),
  tally: tallyValidator,
  keyIds: v.array(
    v.object({
      keyId: v.string(),
      format: v.union(v.literal("v2"), v.literal("v1")),
      rows: v.number(),
      configured: v.union(v.literal("current"), v.literal("previous"), v.literal("missing")),
    }),
  ),
  missingKeyIds: v.array(v.string()),
  /** Values (any table, short-lived ones included) that need an OLD_MASTER_KEY key or may (original format). */
  needOldKey: v.number(),
});
export type Inventory = Infer<typeof inventoryValidator>;

export const progressValidator = v.object({
  phase: jobPhaseValidator,
  total: v.union(v.number(), v.null()),
  done: v.number(),
  percent: v.union(v.number(), v.null()),
  rowsPerSecond: v.union(v.number(), v.null()),
  etaSeconds: v.union(v.number(), v.null()),
});

export const jobStatusValidator = v.object({
  _id: v.id("reencryptionJobs"),
  _creationTime: v.number(),
  ...jobFields,
  progress: progressValidator,
  batchState: batchStateValidator,
  failureSample: v.array(v.object({ table: jobTableValidator, rowId: v.string(), code: v.string(), keyId: v.optional(v.string()) })),
});

/** keyRotation:status (and upgrade:status): keys now, a fresh inventory, whether OLD_MASTER_KEY can go, the next step, the job. */
export const statusValidator = v.object({
  keys: keyringStateValidator,
  inventory: v.union(inventoryValidator, v.null()),
  safeToRemoveOldKey: v.boolean(),
  next: v.string(),
  job: v.union(jobStatusValidator, v.null()),
});
export type Status = Infer<typeof statusValidator>;
