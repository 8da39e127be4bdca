/**
 * The access check of the action builders (actionBuilders.ts projectAction and
 * connectionAction). Actions have no database, so the whole check runs in
 * this one internal mutation: who the caller is, their role in the project,
 * and the rate-limit tokens the action takes. It throws (and so takes no
 * token) when any of them refuses.
 */
import { v } from "convex/values";
import { internalMutation } from "../_generated/server";
import { memberRoleValidator } from "../validators";
import { findUserByToken } from "./identity";
import { consumeRateLimit, rateLimitRuleValidator } from "./rateLimits";
import { requireProjectRole, requireRowRole } from "./roles";

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
    const user = await findUserByToken(ctx, tokenIdentifier);
    const userId = user?._id ?? null;
    const checked =
      "connectionId" in target
        ? await requireRowRole(ctx, userId, "connections", target.connectionId, minimumRole)
        : await requireProjectRole(ctx, userId, target.projectId, minimumRole);
    const { membership } = checked;
    const projectId = checked.project._id;
    const connectionId = "connectionId" in target ? target.connectionId : undefined;
    for (const { name, per } of rateLimits) {
      const key = per === "user" ? membership.userId : per === "project" ? projectId : connectionId;
      if (key === undefined) throw new Error(`rate limit ${name} is per connection, but the action targets a project`);
      await consumeRateLimit(ctx, name, key);
    }
    return { userId: membership.userId, projectId, connectionId, role: membership.role };
  },
});
