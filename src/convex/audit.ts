/**
 * The audit trail: who created, changed, removed or decrypted which secret,
 * and when. Entries name rows and actions, never secret values.
 */
import { v, type Infer } from "convex/values";
import { internalMutation, type MutationCtx } from "./_generated/server";
import { auditActionValidator } from "./validators";

export const auditEntryValidator = v.object({
  action: auditActionValidator,
  actorId: v.optional(v.id("users")),
  projectId: v.optional(v.id("projects")),
  targetTable: v.string(),
  targetId: v.string(),
  /** Secret-free detail, e.g. an error code. */
  detail: v.optional(v.string()),
});
export type AuditEntry = Infer<typeof auditEntryValidator>;

/** Appends an entry to the audit log (from a mutation). */
export async function recordAudit(ctx: MutationCtx, entry: AuditEntry): Promise<void> {
  await ctx.db.insert("auditLog", { ...entry, at: Date.now() });
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
