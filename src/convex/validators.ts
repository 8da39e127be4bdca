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
