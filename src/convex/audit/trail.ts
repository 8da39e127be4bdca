/**
 * The audit trail: who created, changed, removed or decrypted which secret,
 * and when. Entries name rows and actions, never secret values.
 */
import { v } from "convex/values";
import type { Doc, Id, TableNames } from "../_generated/dataModel";
import { internalMutation, type MutationCtx, type QueryCtx } from "../_generated/server";
import { auditEntryValidator, type AuditEntry } from "../validators";

/**
 * Added to the detail of an entry that records a decryption of a value in
 * the original Dashtray format: that format binds nothing to its row, so
 * until the upgrade job retires it (docs/upgrade.md) such reads are flagged.
 */
export const LEGACY_FORMAT_AUDIT_NOTE = "legacy format (original Dashtray)";

/** Appends an entry to the audit log (from a mutation). */
export async function recordAudit(ctx: MutationCtx, entry: AuditEntry): Promise<void> {
  await ctx.db.insert("auditLog", { ...entry, at: Date.now() });
}

/**
 * Records that the signed-in caller (a builder's ctx.user) did `action` to
 * row `targetId` of `targetTable` in project `projectId`: an entry every
 * member of the project sees. `detail` is secret-free (a role, a service).
 */
export async function recordUserAct<T extends TableNames>(
  ctx: MutationCtx & { user: Doc<"users"> },
  action: AuditEntry["action"],
  projectId: Id<"projects">,
  targetTable: T,
  targetId: Id<T>,
  detail?: string,
): Promise<void> {
  await recordAudit(ctx, { action, actorId: ctx.user._id, projectId, targetTable, targetId, ...(detail === undefined ? {} : { detail }) });
}

/**
 * Whom an entry about `projectId` belongs to: the project (its members see
 * it), or, once the project was removed (projects.remove), the user who
 * removed it (auditLog.listMine), so nothing is written under a removed
 * project's id. No owner when no removal entry is found (operators only).
 */
export async function projectAuditScope(
  ctx: QueryCtx,
  projectId: Id<"projects">,
): Promise<{ projectId: Id<"projects"> } | { ownerId?: Id<"users"> }> {
  if (await ctx.db.get("projects", projectId)) return { projectId };
  const removal = await ctx.db
    .query("auditLog")
    .withIndex("by_targetId_and_at", (q) => q.eq("targetId", projectId))
    .order("desc")
    .first();
  return removal?.action === "project.removed" && removal.ownerId ? { ownerId: removal.ownerId } : {};
}

/** Appends an entry to the audit log (for actions, which have no db). */
export const record = internalMutation({
  args: auditEntryValidator.fields,
  returns: v.null(),
  handler: async (ctx, entry) => {
    await recordAudit(ctx, entry);
    return null;
  },
});
