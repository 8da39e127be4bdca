/**
 * The audit trail: who created, changed, removed or decrypted which secret,
 * and when. Entries name rows and actions, never secret values.
 */
import { v } from "convex/values";
import { internalMutation, type MutationCtx } from "./_generated/server";
import { auditEntryValidator, type AuditEntry } from "./validators";

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

/** Appends an entry to the audit log (for actions, which have no db). */
export const record = internalMutation({
  args: auditEntryValidator.fields,
  returns: v.null(),
  handler: async (ctx, entry) => {
    await recordAudit(ctx, entry);
    return null;
  },
});
