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
