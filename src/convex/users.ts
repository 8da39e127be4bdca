/**
 * The caller's own user record. The dashboard calls users.store after
 * sign-in, so that others can add the user to projects by email straight away.
 */
import { paginationOptsValidator } from "convex/server";
import { v } from "convex/values";
import { internal } from "./_generated/api";
import { internalMutation, internalQuery } from "./_generated/server";
import { userMutation } from "./functions";

/**
 * Creates the caller's users row if needed, brings its name and email up to
 * date with the identity token (the email only when verified), and returns them.
 */
export const store = userMutation({
  args: {},
  returns: v.object({ userId: v.id("users"), name: v.optional(v.string()), email: v.optional(v.string()) }),
  handler: async (ctx) => ({ userId: ctx.user._id, name: ctx.user.name, email: ctx.user.email }),
});

/** The users row for a token identifier (used by userAction, which has no db). */
export const getByTokenIdentifier = internalQuery({
  args: { tokenIdentifier: v.string() },
  handler: async (ctx, { tokenIdentifier }) => {
    return ctx.db
      .query("users")
      .withIndex("by_tokenIdentifier", (q) => q.eq("tokenIdentifier", tokenIdentifier))
      .unique();
  },
});

/** Users rows handled per clearStoredEmails batch. */
const EMAILS_CLEARED_PER_BATCH = 200;

/**
 * One-off upgrade step: removes every stored email, one batch per run,
 * scheduling the next. Rows written before emails had to be verified may
 * hold an address nobody proved to own, and addMember trusts users.email.
 * Each user's next sign-in stores their email again if it is verified.
 * Run once: `npx convex run users:clearStoredEmails '{}'`.
 */
export const clearStoredEmails = internalMutation({
  args: { cursor: v.optional(paginationOptsValidator.fields.cursor) },
  returns: v.null(),
  handler: async (ctx, { cursor = null }) => {
    const { page, isDone, continueCursor } = await ctx.db
      .query("users")
      .paginate({ cursor, numItems: EMAILS_CLEARED_PER_BATCH });
    for (const user of page) {
      if (user.email !== undefined) await ctx.db.patch("users", user._id, { email: undefined });
    }
    if (!isDone) await ctx.scheduler.runAfter(0, internal.users.clearStoredEmails, { cursor: continueCursor });
    return null;
  },
});
