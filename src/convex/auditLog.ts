/**
 * Reading a project's audit trail (written by audit.ts): who created,
 * changed, removed or decrypted which secret, and member changes.
 */
import { paginationOptsValidator, paginationResultValidator } from "convex/server";
import { projectQuery } from "./functions";
import { auditLogEntryValidator } from "./validators";

/** Most entries one page holds, whatever the client asks for. */
export const MAX_AUDIT_PAGE_SIZE = 100;

/** The project's audit log (members), newest first, one page at a time. */
export const list = projectQuery({
  args: { paginationOpts: paginationOptsValidator },
  returns: paginationResultValidator(auditLogEntryValidator),
  handler: async (ctx, { projectId, paginationOpts }) => {
    const result = await ctx.db
      .query("auditLog")
      .withIndex("by_projectId_and_at", (q) => q.eq("projectId", projectId))
      .order("desc")
      .paginate({ ...paginationOpts, numItems: Math.min(Math.max(paginationOpts.numItems, 1), MAX_AUDIT_PAGE_SIZE) });
    return {
      ...result,
      page: result.page.map((entry) => ({
        entryId: entry._id,
        action: entry.action,
        actorId: entry.actorId,
        targetTable: entry.targetTable,
        targetId: entry.targetId,
        detail: entry.detail,
        at: entry.at,
      })),
    };
  },
});
