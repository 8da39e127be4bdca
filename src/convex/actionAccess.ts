/**
 * The access check of the action builders (functions.ts projectAction and
 * connectionAction). Actions have no database, so the whole check runs in
 * this one internal mutation: who the caller is, their role in the project,
 * and the rate-limit tokens the action takes. It throws (and so takes no
 * token) when any of them refuses.
 */
import { v } from "convex/values";
import type { Id } from "./_generated/dataModel";
import { internalMutation } from "./_generated/server";
import { requireProjectRole } from "./auth";
import { appError } from "./errors";
import { consumeRateLimit, rateLimitRuleValidator } from "./rateLimits";
import { memberRoleValidator } from "./validators";

/** What an authorized action learns about its caller and target. */
export const actionAccessValidator = v.object({
  userId: v.id("users"),
  projectId: v.id("projects"),
  /** Set when the action targets a connection. */
  connectionId: v.optional(v.id("connections")),
  role: memberRoleValidator,
});

/**
 * Checks that the caller (by tokenIdentifier) has at least `minimumRole` in
 * the target's project, then takes one token from each rate-limit bucket in
 * `rateLimits` (all or none: a refusal rolls the others back). NOT_FOUND for
 * a missing project or connection, FORBIDDEN for a non-member or too low a
 * role, RATE_LIMITED when a bucket is empty.
 */
export const authorize = internalMutation({
  args: {
    tokenIdentifier: v.string(),
    target: v.union(v.object({ projectId: v.id("projects") }), v.object({ connectionId: v.id("connections") })),
    minimumRole: memberRoleValidator,
    rateLimits: v.array(rateLimitRuleValidator),
  },
  returns: actionAccessValidator,
  handler: async (ctx, { tokenIdentifier, target, minimumRole, rateLimits }) => {
    const user = await ctx.db
      .query("users")
      .withIndex("by_tokenIdentifier", (q) => q.eq("tokenIdentifier", tokenIdentifier))
      .unique();
    let projectId: Id<"projects">;
    let connectionId: Id<"connections"> | undefined;
    if ("connectionId" in target) {
      const connection = await ctx.db.get("connections", target.connectionId);
      if (!connection) throw appError("NOT_FOUND", "Connection not found");
      projectId = connection.projectId;
      connectionId = connection._id;
    } else {
      projectId = target.projectId;
    }
    const { membership } = await requireProjectRole(ctx, user?._id ?? null, projectId, minimumRole);
    for (const { name, per } of rateLimits) {
      const key = per === "user" ? membership.userId : per === "project" ? projectId : connectionId;
      if (key === undefined) throw new Error(`rate limit ${name} is per connection, but the action targets a project`);
      await consumeRateLimit(ctx, name, key);
    }
    return { userId: membership.userId, projectId, connectionId, role: membership.role };
  },
});
