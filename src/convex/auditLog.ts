/**
 * Reading the audit trail (written by audit/trail.ts): who created, changed,
 * removed or decrypted which secret, and member changes. A project's
 * entries are seen by its members; entries about a user's own AI key only
 * by that user.
 */
import { paginationOptsValidator, paginationResultValidator, type PaginationOptions } from "convex/server";
import type { Doc } from "./_generated/dataModel";
import { projectQuery, userQuery } from "./access/builders";
import { auditLogEntryValidator } from "./validators";

/** Most entries one page holds, whatever the client asks for. */
export const MAX_AUDIT_PAGE_SIZE = 100;

/** The client's page size, clamped to 1..MAX_AUDIT_PAGE_SIZE. */
function boundedPage(paginationOpts: PaginationOptions): PaginationOptions {
  return { ...paginationOpts, numItems: Math.min(Math.max(paginationOpts.numItems, 1), MAX_AUDIT_PAGE_SIZE) };
}

/** An entry as clients see it. */
function toEntry(entry: Doc<"auditLog">) {
  return {
    entryId: entry._id,
    action: entry.action,
    actorId: entry.actorId,
    targetTable: entry.targetTable,
    targetId: entry.targetId,
    detail: entry.detail,
    at: entry.at,
  };
}

/**
 * The project's audit log (members), newest first, one page at a time.
 * Entries about a member's own AI key are not listed, including those older
 * versions wrote with the project's id: they are the key owner's (listMine).
 * Those are dropped from the page read, so reads stay bounded by the page
 * size and a page can hold fewer entries than asked (even none) before isDone.
 */
export const list = projectQuery({
  args: { paginationOpts: paginationOptsValidator },
  returns: paginationResultValidator(auditLogEntryValidator),
  handler: async (ctx, { projectId, paginationOpts }) => {
    const result = await ctx.db
      .query("auditLog")
      .withIndex("by_projectId_and_at", (q) => q.eq("projectId", projectId))
      .order("desc")
      .paginate(boundedPage(paginationOpts));
    return { ...result, page: result.page.filter((entry) => entry.targetTable !== "aiKeys").map(toEntry) };
  },
});

/**
 * The caller's own audit entries (any signed-in user), newest first: when
 * their AI key was set, removed, decrypted for an insight (the detail names
 * the project) or failed to decrypt. Nobody else sees these.
 */
export const listMine = userQuery({
  args: { paginationOpts: paginationOptsValidator },
  returns: paginationResultValidator(auditLogEntryValidator),
  handler: async (ctx, { paginationOpts }) => {
    const user = ctx.user;
    if (!user) return { page: [], isDone: true, continueCursor: "" };
    const result = await ctx.db
      .query("auditLog")
      .withIndex("by_ownerId_and_at", (q) => q.eq("ownerId", user._id))
      .order("desc")
      .paginate(boundedPage(paginationOpts));
    return { ...result, page: result.page.map(toEntry) };
  },
});
