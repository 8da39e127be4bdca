/**
 * The caller's own user record. The dashboard calls users.store after
 * sign-in, so that others can add the user to projects by email straight away.
 */
import { v } from "convex/values";
import { internalQuery } from "./_generated/server";
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
