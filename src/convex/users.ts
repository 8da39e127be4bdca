/**
 * The caller's own user record. The dashboard calls users.store after
 * sign-in, so that the name and (verified) email other members see are
 * current. Invitations never look users up: they match the token's
 * verified email when accepted.
 */
import { doc } from "convex-helpers/validators";
import { v } from "convex/values";
import { internalQuery } from "./_generated/server";
import { userMutation } from "./functions";
import schema from "./schema";

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
  returns: v.union(doc(schema, "users"), v.null()),
  handler: async (ctx, { tokenIdentifier }) => {
    return ctx.db
      .query("users")
      .withIndex("by_tokenIdentifier", (q) => q.eq("tokenIdentifier", tokenIdentifier))
      .unique();
  },
});
