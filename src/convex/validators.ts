/**
 * Validators shared by the schema and by function arguments and return
 * values. Public functions declare `returns` with these so that a field
 * holding ciphertext can never reach a client by accident.
 */
import { v, type Infer } from "convex/values";

export const memberRoleValidator = v.union(v.literal("owner"), v.literal("admin"), v.literal("member"));
export type MemberRole = Infer<typeof memberRoleValidator>;

export const connectionStatusValidator = v.union(
  v.literal("active"),
  v.literal("inactive"),
  v.literal("error"),
  v.literal("pending"),
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
  v.literal("connection.created"),
  v.literal("connection.credentials_updated"),
  v.literal("connection.removed"),
  v.literal("connection.credentials_decrypted"),
  v.literal("connection.decryption_failed"),
  v.literal("aiKey.set"),
  v.literal("aiKey.removed"),
  v.literal("aiKey.decrypted"),
  v.literal("aiKey.decryption_failed"),
  v.literal("apiKey.created"),
  v.literal("apiKey.revoked"),
  v.literal("keyRotation.started"),
  v.literal("keyRotation.finished"),
);
export type AuditAction = Infer<typeof auditActionValidator>;

/** An audit log entry as written (the table adds `at`). Names rows and actions, never secret values. */
export const auditEntryValidator = v.object({
  action: auditActionValidator,
  /** The user who acted; absent for system work (crons, rotation, API-key requests). */
  actorId: v.optional(v.id("users")),
  projectId: v.optional(v.id("projects")),
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
