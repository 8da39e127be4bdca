/**
 * Validators shared by the schema and by function arguments and return
 * values. Public functions declare `returns` with these so that a field
 * holding ciphertext can never reach a client by accident.
 */
import { v, type Infer } from "convex/values";

export const memberRoleValidator = v.union(v.literal("owner"), v.literal("admin"), v.literal("member"));
export type MemberRole = Infer<typeof memberRoleValidator>;

/** An invitation is pending until accepted or revoked (an expired one stays pending but cannot be accepted). */
export const invitationStateValidator = v.union(v.literal("pending"), v.literal("accepted"), v.literal("revoked"));
export type InvitationState = Infer<typeof invitationStateValidator>;

export const connectionStatusValidator = v.union(
  v.literal("active"),
  v.literal("inactive"),
  v.literal("error"),
  v.literal("pending"),
  /** An OAuth grant was refused (revoked or expired refresh token): an admin must connect the account again. */
  v.literal("needs_reauth"),
);
export type ConnectionStatus = Infer<typeof connectionStatusValidator>;

export const aiProviderValidator = v.union(v.literal("openai"), v.literal("anthropic"));
export type AiProvider = Infer<typeof aiProviderValidator>;

/** Credentials as the dashboard sends them: field name → value. */
export const credentialsValidator = v.record(v.string(), v.string());
export type Credentials = Infer<typeof credentialsValidator>;

export const auditActionValidator = v.union(
  v.literal("project.member_added"),
  v.literal("project.member_removed"),
  v.literal("project.renamed"),
  v.literal("project.removed"),
  v.literal("invitation.created"),
  v.literal("invitation.accepted"),
  v.literal("invitation.revoked"),
  v.literal("connection.created"),
  v.literal("connection.credentials_updated"),
  v.literal("connection.removed"),
  v.literal("connection.paused"),
  v.literal("connection.resumed"),
  v.literal("connection.credentials_decrypted"),
  v.literal("connection.decryption_failed"),
  v.literal("connection.oauth_connected"),
  v.literal("connection.tokens_refreshed"),
  v.literal("connection.needs_reauth"),
  v.literal("connection.tokens_revoked"),
  v.literal("aiKey.set"),
  v.literal("aiKey.removed"),
  v.literal("aiKey.decrypted"),
  v.literal("aiKey.decryption_failed"),
  v.literal("apiKey.created"),
  v.literal("apiKey.revoked"),
  v.literal("keyRotation.started"),
  v.literal("keyRotation.finished"),
  v.literal("upgrade.started"),
  v.literal("upgrade.finished"),
);
export type AuditAction = Infer<typeof auditActionValidator>;

/** An audit log entry as written (the table adds `at`). Names rows and actions, never secret values. */
export const auditEntryValidator = v.object({
  action: auditActionValidator,
  /** The user who acted; absent for system work (crons, rotation, API-key requests). */
  actorId: v.optional(v.id("users")),
  /** The project the entry belongs to: every member of it sees the entry (auditLog.list). */
  projectId: v.optional(v.id("projects")),
  /**
   * The user whose own secret the entry is about (AI keys): only they see it
   * (auditLog.listMine). Such entries have no projectId, even when the secret
   * was used for a project, so other members never see them.
   */
  ownerId: v.optional(v.id("users")),
  /** "connections", "aiKeys", "apiKeys", ... */
  targetTable: v.string(),
  targetId: v.string(),
  /** Secret-free detail, e.g. an error code. */
  detail: v.optional(v.string()),
});
export type AuditEntry = Infer<typeof auditEntryValidator>;

// Return values of public functions. Each lists exactly the fields a client
// may see: Convex rejects a return value with any other field, so ciphertext,
// legacy plaintext and key hashes cannot leak through them.

/** A project as its members see it in the project list. */
export const projectSummaryValidator = v.object({
  projectId: v.id("projects"),
  name: v.string(),
  role: memberRoleValidator,
  createdAt: v.number(),
});

/** A member of a project. */
export const projectMemberValidator = v.object({
  userId: v.id("users"),
  name: v.optional(v.string()),
  email: v.optional(v.string()),
  role: memberRoleValidator,
  createdAt: v.number(),
});

/** A pending invitation as the project's owners and admins see it. */
export const invitationSummaryValidator = v.object({
  invitationId: v.id("invitations"),
  email: v.string(),
  role: memberRoleValidator,
  invitedBy: v.id("users"),
  createdAt: v.number(),
  expiresAt: v.number(),
});

/** A pending invitation as its invitee sees it. */
export const myInvitationValidator = v.object({
  invitationId: v.id("invitations"),
  projectId: v.id("projects"),
  projectName: v.string(),
  role: memberRoleValidator,
  invitedByName: v.optional(v.string()),
  createdAt: v.number(),
  expiresAt: v.number(),
});

/** Connection metadata: masked credential hints, never ciphertext or plaintext. */
export const connectionSummaryValidator = v.object({
  connectionId: v.id("connections"),
  projectId: v.id("projects"),
  service: v.string(),
  name: v.string(),
  credentialHints: v.record(v.string(), v.string()),
  status: connectionStatusValidator,
  healthScore: v.number(),
  lastError: v.optional(v.string()),
  lastSyncedAt: v.optional(v.number()),
  createdAt: v.number(),
  updatedAt: v.number(),
});

/** The caller's AI provider key, as a masked hint. */
export const aiKeySummaryValidator = v.object({
  provider: aiProviderValidator,
  hint: v.string(),
  updatedAt: v.number(),
});

/** A platform API key as listed: its display prefix, never the key or its hash. */
export const apiKeySummaryValidator = v.object({
  apiKeyId: v.id("apiKeys"),
  name: v.string(),
  prefix: v.string(),
  createdBy: v.optional(v.id("users")),
  createdAt: v.number(),
  lastUsedAt: v.optional(v.number()),
  revokedAt: v.optional(v.number()),
});

/** One audit log entry as members of the project see it. */
export const auditLogEntryValidator = v.object({
  entryId: v.id("auditLog"),
  action: auditActionValidator,
  actorId: v.optional(v.id("users")),
  targetTable: v.string(),
  targetId: v.string(),
  detail: v.optional(v.string()),
  at: v.number(),
});

/** What connections.syncMetrics returns: the connection's status after the sync. */
export const syncResultValidator = v.object({
  status: connectionStatusValidator,
  /** Metric points stored by this sync (0 when it failed or was skipped). */
  metricsStored: v.number(),
  /** Secret-free reason when the sync failed (also in connections.lastError). */
  error: v.optional(v.string()),
});
export type SyncResult = Infer<typeof syncResultValidator>;

/** An AI insight as returned to the dashboard. */
export const insightValidator = v.object({
  insightId: v.id("insights"),
  provider: aiProviderValidator,
  model: v.string(),
  text: v.string(),
  createdAt: v.number(),
});
export type Insight = Infer<typeof insightValidator>;

/**
 * Ids of the configured master keys when the last rotation job started, in
 * keyring order (current first, then OLD_MASTER_KEY's entries): v2 ids and
 * v1 ids. Decrypting calls use them as hints to derive the right old key
 * first. Public: every ciphertext carries its key's id in clear text.
 */
export const keyIdOrderValidator = v.object({ v2: v.array(v.string()), v1: v.array(v.string()) });
export type KeyIdOrder = Infer<typeof keyIdOrderValidator>;

/** Master-key rotation job: running (scheduled batches in flight), done, or stopped (see stopReason). */
export const rotationStatusValidator = v.union(v.literal("running"), v.literal("done"), v.literal("stopped"));
export type RotationStatus = Infer<typeof rotationStatusValidator>;

/**
 * Phases of a rotation job, in order: "scan" reads ciphertext headers only
 * (pre-flight, no crypto, no writes), "rotate" re-encrypts and migrates,
 * "verify" reads headers again to confirm nothing is left behind.
 */
export const rotationPhaseValidator = v.union(v.literal("scan"), v.literal("rotate"), v.literal("verify"));
export type RotationPhase = Infer<typeof rotationPhaseValidator>;

/** Tables holding secrets the rotation job visits, in the order it visits them. */
export const rotationTableValidator = v.union(v.literal("connections"), v.literal("aiKeys"), v.literal("apiKeys"));
export type RotationTable = Infer<typeof rotationTableValidator>;

/** Index position of the last row a rotation batch handled: (project or user id, _creationTime). */
export const rotationCursorValidator = v.object({ group: v.string(), creationTime: v.number() });
export type RotationCursor = Infer<typeof rotationCursorValidator>;

/** What the stored secrets look like, counted from headers alone (scan and verify phases). */
export const secretShapeCountsValidator = v.object({
  rows: v.number(),
  /** Format v2 under the current key, already hashed, or holding no secret: nothing to do. */
  upToDate: v.number(),
  /** Format v2 under a configured previous key. */
  previousKey: v.number(),
  /** Format v2 or v1 under a key that is not configured. */
  unknownKey: v.number(),
  /** An older format under a configured key: v1, or the original Dashtray format. */
  legacyFormat: v.number(),
  /** Plaintext left by older versions (credentials, AI key, unhashed API key). */
  plaintext: v.number(),
  /** Unreadable as stored: non-ciphertext, another format version or a malformed value in an encrypted field, or ciphertext and plaintext both present. */
  invalid: v.number(),
});
export type SecretShapeCounts = Infer<typeof secretShapeCountsValidator>;

/** Outcomes of the rotate phase (in a dry run: what would happen). */
export const rotationCountsValidator = v.object({
  scanned: v.number(),
  reEncrypted: v.number(),
  /** v1, legacy ciphertext or plaintext moved to format v2 under the current key, or API keys hashed. */
  migrated: v.number(),
  alreadyCurrent: v.number(),
  failed: v.number(),
});
export type RotationCounts = Infer<typeof rotationCountsValidator>;

/**
 * Why a rotation job stopped before finishing: the message says what to do.
 * UNKNOWN_KEY_IDS and NOTHING_TO_ROTATE stop a job right after its scan,
 * before anything is written (UNKNOWN_KEYS_WITHOUT_OLD_KEY: the same, from
 * older versions).
 */
export const rotationStopReasonValidator = v.object({
  code: v.union(
    v.literal("UNKNOWN_KEY_IDS"),
    v.literal("NOTHING_TO_ROTATE"),
    v.literal("UNKNOWN_KEYS_WITHOUT_OLD_KEY"),
    v.literal("KEYRING_CHANGED"),
    v.literal("REPLACED"),
  ),
  /**
   * NOTHING_TO_ROTATE's likely cause: SWAPPED_KEYS (the data is under
   * MASTER_ENCRYPTION_KEY and OLD_MASTER_KEY holds a key nothing was ever
   * under), ALREADY_ROTATED (an earlier job moved the data off
   * OLD_MASTER_KEY's keys), NO_OLD_KEY (OLD_MASTER_KEY is empty and the data
   * is up to date).
   */
  cause: v.optional(v.union(v.literal("SWAPPED_KEYS"), v.literal("ALREADY_ROTATED"), v.literal("NO_OLD_KEY"))),
  /** UNKNOWN_KEY_IDS: the key ids found in the data that no configured key has. */
  missingKeyIds: v.optional(v.array(v.string())),
  message: v.string(),
});
export type RotationStopReason = Infer<typeof rotationStopReasonValidator>;

/** State of the scheduled batch a rotation job waits on ("none" when it has none). */
export const rotationBatchStateValidator = v.union(
  v.literal("none"),
  v.literal("pending"),
  v.literal("inProgress"),
  v.literal("success"),
  v.literal("failed"),
  v.literal("canceled"),
);
export type RotationBatchState = Infer<typeof rotationBatchStateValidator>;

/** Rows under one master key id, as the scan found them (v2 or v1 ciphertext headers). */
export const keyIdRowsValidator = v.object({
  keyId: v.string(),
  format: v.union(v.literal("v2"), v.literal("v1")),
  rows: v.number(),
});
export type KeyIdRows = Infer<typeof keyIdRowsValidator>;

/** What the scan found per master key id, plus the secrets that name no key. */
export const rotationInventoryValidator = v.object({
  /** Every key id found in the data (at most MAX_INVENTORY_KEY_IDS; the rest in `otherKeyIdRows`). */
  keyIds: v.array(keyIdRowsValidator),
  /** Rows under key ids beyond the first MAX_INVENTORY_KEY_IDS. */
  otherKeyIdRows: v.number(),
  /** Ciphertext in the original Dashtray format (names no key). */
  originalFormat: v.number(),
});
export type RotationInventory = Infer<typeof rotationInventoryValidator>;

/** Fields of a keyRotationJobs document (one master-key rotation or dry run). */
export const rotationJobFields = {
  status: rotationStatusValidator,
  dryRun: v.boolean(),
  /** v2 id of MASTER_ENCRYPTION_KEY when the job started; a rotate batch that sees another key stops the job. */
  currentKeyId: v.string(),
  /** v2 ids of the OLD_MASTER_KEY entries when the job started. */
  previousKeyIds: v.array(v.string()),
  /**
   * v1 ids of the same keys (computed once, when the job started), so batches
   * classify v1 values with no crypto. Absent on jobs started by older
   * versions, whose batches stop (KEYRING_CHANGED): start a new job.
   */
  currentV1KeyId: v.optional(v.string()),
  previousV1KeyIds: v.optional(v.array(v.string())),
  phase: rotationPhaseValidator,
  table: rotationTableValidator,
  /** Last row handled in (phase, table); absent at the start of a table. */
  cursor: v.optional(rotationCursorValidator),
  /** Token of the live batch chain; a resume bumps it so a stale chain stops by itself. */
  sequence: v.number(),
  /** The scheduled batch the job waits on. */
  nextBatchId: v.optional(v.id("_scheduled_functions")),
  /** Shapes counted by the pre-flight scan. */
  preflight: secretShapeCountsValidator,
  /** Shapes counted after the rotate phase (real runs only). */
  verification: secretShapeCountsValidator,
  counts: rotationCountsValidator,
  batches: v.number(),
  /** Most rows any one batch handled. */
  maxBatchRows: v.number(),
  /** Most PBKDF2 derivations any one batch performed (v2 roots, v1 and legacy keys). */
  maxBatchDerivations: v.number(),
  /** Most bytes any one batch read (documents read, plus documents read again by the patches that rewrote them). */
  maxBatchBytes: v.optional(v.number()),
  /**
   * PBKDF2 derivations a rotate batch may perform; each resume halves it (minimum 1).
   * Absent on jobs created before it existed, which use MAX_DERIVATIONS_PER_BATCH.
   */
  derivationBudget: v.optional(v.number()),
  /** Rows a batch may handle; each resume halves it (minimum 1). Absent on older jobs: MAX_ROWS_PER_BATCH. */
  rowBudget: v.optional(v.number()),
  /** Bytes a batch may read; each resume halves it. Absent on older jobs: MAX_BYTES_PER_BATCH. */
  byteBudget: v.optional(v.number()),
  /** How many times a dead batch chain was restarted (by `rotate` or by the cron). */
  resumes: v.number(),
  /** How many of those restarts the cron did (keyRotation:resumeStalled), and when it last did. */
  autoResumes: v.optional(v.number()),
  lastAutoResumeAt: v.optional(v.number()),
  /** `batches` when the cron last resumed: no batch since then means the chain died again without progress. */
  batchesAtAutoResume: v.optional(v.number()),
  /** When the cron gave up: the chain died at the smallest budgets without progress (a human reads the error). */
  autoResumeGaveUpAt: v.optional(v.number()),
  /** When the current phase began (for rows per second); absent on older jobs: startedAt. */
  phaseStartedAt: v.optional(v.number()),
  /** Rows per key id found by the scan so far (absent on older jobs). */
  inventory: v.optional(rotationInventoryValidator),
  /** When the scan ended (the inventory is complete from then on). */
  scanFinishedAt: v.optional(v.number()),
  /** Set by `rotate {allowMissingKeys: true}`: rows under unknown key ids become failures instead of stopping the job. */
  allowMissingKeys: v.optional(v.boolean()),
  stopReason: v.optional(rotationStopReasonValidator),
  startedAt: v.number(),
  updatedAt: v.number(),
  finishedAt: v.optional(v.number()),
};

/** A row the rotation job could not process; it was left untouched. */
export const rotationFailureFields = {
  jobId: v.id("keyRotationJobs"),
  table: rotationTableValidator,
  rowId: v.string(),
  /** Crypto error code (UNKNOWN_KEY_ID, DECRYPTION_FAILED, ...) or CONFLICTING_FIELDS. */
  code: v.string(),
  /** Id of the master key the value names, when it names one (e.g. the key to find for UNKNOWN_KEY_ID). */
  keyId: v.optional(v.string()),
  at: v.number(),
};

/** How far a job is: rows done of the scan's total in the current phase, rate and time left. */
export const rotationProgressValidator = v.object({
  phase: rotationPhaseValidator,
  /** Rows the scan counted (null while the scan runs: the total is what it is counting). */
  total: v.union(v.number(), v.null()),
  /** Rows handled in this phase. */
  done: v.number(),
  percent: v.union(v.number(), v.null()),
  /** Rows per second in this phase, from its start to the last batch. */
  rowsPerSecond: v.union(v.number(), v.null()),
  /** Seconds until this phase ends at that rate (verify, header-only, is much faster than rotate). */
  etaSeconds: v.union(v.number(), v.null()),
});
export type RotationProgress = Infer<typeof rotationProgressValidator>;

/** The deployment's master keys as configured now (ids only, never a value). */
export const keyringStateValidator = v.object({
  /** v2 id of MASTER_ENCRYPTION_KEY; null when it is unusable or nothing was ever encrypted in format v2 (no root salt). */
  current: v.union(v.string(), v.null()),
  /** v2 ids of OLD_MASTER_KEY's usable keys (the current key excluded). */
  previous: v.array(v.string()),
  /** OLD_MASTER_KEY entries that are unusable (position and code, never the value). */
  invalidEntries: v.array(v.object({ variable: v.literal("OLD_MASTER_KEY"), entry: v.number(), code: v.string() })),
  /** True when OLD_MASTER_KEY holds the current key: step 1 done, the new key not set yet. */
  oldKeySavedOnly: v.boolean(),
  /** Why MASTER_ENCRYPTION_KEY looks non-random (lib/keyStrength.ts); empty when it looks generated. */
  currentKeyWeak: v.array(v.string()),
  /** Why MASTER_ENCRYPTION_KEY is unusable (e.g. MASTER_KEY_MISSING), if it is. */
  error: v.optional(v.object({ code: v.string(), variable: v.string() })),
  /** The key state in words, e.g. "old key saved, ready for a new MASTER_ENCRYPTION_KEY". */
  message: v.string(),
});
export type KeyringState = Infer<typeof keyringStateValidator>;

/** Key ids in the data (from a job's scan) against the keys configured now. */
export const keyInventoryValidator = v.object({
  /** The job whose scan this is, and when its scan ended. */
  jobId: v.id("keyRotationJobs"),
  scannedAt: v.number(),
  keyIds: v.array(
    v.object({
      keyId: v.string(),
      format: v.union(v.literal("v2"), v.literal("v1")),
      rows: v.number(),
      /** Which configured key has this id now: "current", "previous", or "missing" (no configured key). */
      configured: v.union(v.literal("current"), v.literal("previous"), v.literal("missing")),
    }),
  ),
  /** Key ids in the data that no configured key has. */
  missingKeyIds: v.array(v.string()),
  otherKeyIdRows: v.number(),
  originalFormat: v.number(),
  plaintext: v.number(),
  invalid: v.number(),
});
export type KeyInventory = Infer<typeof keyInventoryValidator>;

/** A rotation job as keyRotation:status shows it. */
export const rotationJobStatusValidator = v.object({
  _id: v.id("keyRotationJobs"),
  _creationTime: v.number(),
  ...rotationJobFields,
  progress: rotationProgressValidator,
  autoResumes: v.number(),
  /** The job's current derivation budget per rotate batch. */
  derivationBudget: v.number(),
  /** The job's current row and byte budgets per batch. */
  rowBudget: v.number(),
  byteBudget: v.number(),
  batchState: rotationBatchStateValidator,
  /** Done, not a dry run, no failures and nothing left under an old key: OLD_MASTER_KEY can go. */
  safeToRemoveOldKey: v.boolean(),
  /** The first failures (all of them: keyRotation:failures). */
  failureSample: v.array(
    v.object({ table: rotationTableValidator, rowId: v.string(), code: v.string(), keyId: v.optional(v.string()) }),
  ),
});
export type RotationJobStatus = Infer<typeof rotationJobStatusValidator>;

/** Tables the upgrade job (upgrade.ts) visits, in the order it visits them. */
export const upgradeTableValidator = v.union(
  v.literal("connections"),
  v.literal("users"),
  v.literal("aiKeys"),
  v.literal("apiKeys"),
);
export type UpgradeTable = Infer<typeof upgradeTableValidator>;

/** Phases of an upgrade job: "migrate" brings rows to the current shape, "verify" counts what is left (no crypto). */
export const upgradePhaseValidator = v.union(v.literal("migrate"), v.literal("verify"));
export type UpgradePhase = Infer<typeof upgradePhaseValidator>;

/**
 * What is left in an older shape, counted from the rows alone (no crypto) by
 * the verify phase; a row can count under several fields.
 */
export const upgradeRemainingValidator = v.object({
  /** Rows the verify phase looked at. */
  rows: v.number(),
  /** users rows still holding the original's AI key fields (aiApiKey, aiProvider). */
  aiKeysOnUsers: v.number(),
  connectionsWithoutName: v.number(),
  /** Connections without hints, and AI keys with an empty hint, that hold a secret to compute them from. */
  missingHints: v.number(),
  /** API keys without prefix, or still holding the original's keyPrefix. */
  apiKeysWithoutPrefix: v.number(),
  apiKeysWithoutHashAlgorithm: v.number(),
  /** Values in the original Dashtray format (users.aiApiKey, connections, aiKeys). */
  legacyCiphertext: v.number(),
  /** Plaintext secrets: connections.credentials, aiKeys.apiKey, users.aiApiKey or unhashed API keys. */
  plaintextSecrets: v.number(),
});
export type UpgradeRemaining = Infer<typeof upgradeRemainingValidator>;

/** Outcomes of the migrate phase. */
export const upgradeCountsValidator = v.object({
  scanned: v.number(),
  upgraded: v.number(),
  alreadyCurrent: v.number(),
  failed: v.number(),
});
export type UpgradeCounts = Infer<typeof upgradeCountsValidator>;

/** Why an upgrade job stopped before finishing. */
export const upgradeStopReasonValidator = v.object({
  code: v.literal("KEYRING_CHANGED"),
  message: v.string(),
});

/** Fields of an upgradeJobs document (one run of the upgrade from the original Dashtray's data). */
export const upgradeJobFields = {
  status: rotationStatusValidator,
  phase: upgradePhaseValidator,
  table: upgradeTableValidator,
  /** Last row handled in (phase, table); absent at the start of a table. */
  cursor: v.optional(rotationCursorValidator),
  /** Token of the live batch chain; a resume bumps it so a stale chain stops by itself. */
  sequence: v.number(),
  nextBatchId: v.optional(v.id("_scheduled_functions")),
  /** v2 id of MASTER_ENCRYPTION_KEY when the job started; a migrate batch that sees another key stops the job. */
  currentKeyId: v.string(),
  counts: upgradeCountsValidator,
  /** Counted by the verify phase. */
  remaining: upgradeRemainingValidator,
  batches: v.number(),
  maxBatchRows: v.number(),
  maxBatchDerivations: v.number(),
  maxBatchBytes: v.number(),
  /** Per-batch budgets; each resume halves them (as keyRotation's). */
  derivationBudget: v.number(),
  rowBudget: v.number(),
  byteBudget: v.number(),
  resumes: v.number(),
  stopReason: v.optional(upgradeStopReasonValidator),
  /** Set when this job found no original-format value left and retired the format (encryptionSettings.legacyRetiredAt). */
  legacyRetiredAt: v.optional(v.number()),
  startedAt: v.number(),
  updatedAt: v.number(),
  finishedAt: v.optional(v.number()),
};

/** A row the upgrade job could not bring to the current shape; it was left untouched. */
export const upgradeFailureFields = {
  jobId: v.id("upgradeJobs"),
  table: upgradeTableValidator,
  rowId: v.string(),
  /** Crypto error code (UNKNOWN_KEY_ID, DECRYPTION_FAILED, ...) or an upgrade code (CONFLICTING_FIELDS, ...). */
  code: v.string(),
  at: v.number(),
};

/** What upgrade:status returns. */
export const upgradeStatusValidator = v.object({
  _id: v.id("upgradeJobs"),
  _creationTime: v.number(),
  ...upgradeJobFields,
  batchState: rotationBatchStateValidator,
  /** The first failures (all of them: upgrade:failures). */
  failureSample: v.array(v.object({ table: upgradeTableValidator, rowId: v.string(), code: v.string() })),
  /** Sum of `remaining` (rows excluded): 0 once nothing is left in an older shape. */
  remainingTotal: v.number(),
  /** Done, no failures and nothing remaining: the schema's legacy fields can go (docs/upgrade.md). */
  schemaCanBeNarrowed: v.boolean(),
  /** Whether the deployment refuses the original format now (encryptionSettings.legacyRetiredAt is set). */
  legacyRetired: v.boolean(),
});
export type UpgradeStatus = Infer<typeof upgradeStatusValidator>;

/** What keyRotation:status returns: the keys now, what the data is under, the next step, and the job. */
export const rotationStatusResultValidator = v.object({
  keys: keyringStateValidator,
  /** From the latest job whose scan finished (null before any). */
  inventory: v.union(keyInventoryValidator, v.null()),
  /** The next thing the operator should do, in words. */
  next: v.string(),
  job: v.union(rotationJobStatusValidator, v.null()),
});
export type RotationStatusResult = Infer<typeof rotationStatusResultValidator>;
