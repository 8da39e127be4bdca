/**
 * The caller's own user record. The dashboard calls users.store after
 * sign-in, so that the name and (verified) email other members see are
 * current. Invitations never look users up: they match the token's
 * verified email when accepted.
 */
import { doc } from "convex-helpers/validators";
import { v } from "convex/values";
import { internalQuery } from "./_generated/server";
import { userMutation, userQuery } from "./access/builders";
import { findUserByToken } from "./access/identity";
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

/**
 * The signed-in caller as the dashboard shows them: null before their
 * first mutation (users.store) created their row. Never the token or any key.
 */
export const me = userQuery({
  args: {},
  returns: v.union(
    v.object({ userId: v.id("users"), name: v.optional(v.string()), email: v.optional(v.string()), createdAt: v.number() }),
    v.null(),
  ),
  handler: async (ctx) => {
    const { user } = ctx;
    return user && { userId: user._id, name: user.name, email: user.email, createdAt: user.createdAt };
  },
});

/** The users row for a token identifier (used by userAction, which has no db; access/identity.ts findUserByToken). */
export const getByTokenIdentifier = internalQuery({
  args: { tokenIdentifier: v.string() },
  returns: v.union(doc(schema, "users"), v.null()),
  handler: async (ctx, { tokenIdentifier }) => {
    return findUserByToken(ctx, tokenIdentifier);
  },
});
