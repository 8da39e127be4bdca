/**
 * Projects and their members. Every project has at least one owner; owners
 * invite (invitations.ts) and remove members, owners and admins manage
 * connections and API keys, and any member can read the project.
 */
import { v } from "convex/values";
import { internalQuery } from "./_generated/server";
import { revokeKeysOfRemovedMember } from "./apiKeys";
import { revokeInvitationsOfRemovedMember } from "./invitations";
import { latestPointsOf } from "./metrics";
import { removeProject } from "./jobs/projectRemoval";
import { assertCanOwnAnotherProject } from "./access/caps";
import { recordUserAct } from "./audit/trail";
import { appError } from "./errors";
import { projectMutation, projectQuery, userMutation, userQuery } from "./access/builders";
import { projectMembers } from "./access/roles";
import { cleanName } from "./access/input";
import { projectMemberValidator, projectSummaryValidator } from "./validators";

/** Most projects projects.list returns (newest memberships last). */
export const MAX_PROJECTS_LISTED = 100;

/** Creates a project with the caller as its owner. */
export const create = userMutation({
  args: { name: v.string() },
  returns: v.id("projects"),
  handler: async (ctx, args) => {
    const name = cleanName(args.name, "Project name");
    await assertCanOwnAnotherProject(ctx, ctx.user._id);
    const now = Date.now();
    const projectId = await ctx.db.insert("projects", { name, createdBy: ctx.user._id, createdAt: now });
    await ctx.db.insert("projectMembers", { projectId, userId: ctx.user._id, role: "owner", createdAt: now });
    await recordUserAct(ctx, "project.member_added", projectId, "users", ctx.user._id, "role: owner (created the project)");
    return projectId;
  },
});

/** The projects the caller is a member of, with the caller's role in each. */
export const list = userQuery({
  args: {},
  returns: v.array(projectSummaryValidator),
  handler: async (ctx) => {
    const user = ctx.user;
    if (!user) return [];
    const memberships = await ctx.db
      .query("projectMembers")
      .withIndex("by_userId", (q) => q.eq("userId", user._id))
      .take(MAX_PROJECTS_LISTED);
    const projects = await Promise.all(
      memberships.map(async (membership) => {
        const project = await ctx.db.get("projects", membership.projectId);
        return project && { projectId: project._id, name: project.name, role: membership.role, createdAt: project.createdAt };
      }),
    );
    return projects.filter((project) => project !== null);
  },
});

/** The members of a project (members only). */
export const members = projectQuery({
  args: {},
  returns: v.array(projectMemberValidator),
  handler: async (ctx, { projectId }) => {
    const memberships = await projectMembers(ctx, projectId);
    return Promise.all(
      memberships.map(async (membership) => {
        const user = await ctx.db.get("users", membership.userId);
        return {
          userId: membership.userId,
          name: user?.name,
          email: user?.email,
          role: membership.role,
          createdAt: membership.createdAt,
        };
      }),
    );
  },
});

/**
 * Removes a member from the project. Owners only; removing the last owner
 * is CONFLICT (a project always has an owner). The API keys the member
 * created in the project, and the invitations they sent that are still
 * pending, are revoked in the same transaction, so nothing they set up keeps
 * reading or joining the project after they leave.
 */
export const removeMember = projectMutation({
  args: { userId: v.id("users") },
  minimumRole: "owner",
  returns: v.null(),
  handler: async (ctx, { projectId, userId }) => {
    const members = await projectMembers(ctx, projectId);
    const membership = members.find((member) => member.userId === userId);
    if (!membership) throw appError("NOT_FOUND", "This user is not a member of the project");
    const owners = members.filter((member) => member.role === "owner");
    if (membership.role === "owner" && owners.length <= 1) {
      throw appError("CONFLICT", "A project needs an owner: add another owner before removing this one");
    }
    await ctx.db.delete("projectMembers", membership._id);
    await revokeKeysOfRemovedMember(ctx, projectId, userId, ctx.user._id);
    await revokeInvitationsOfRemovedMember(ctx, projectId, userId, ctx.user._id);
    await recordUserAct(ctx, "project.member_removed", projectId, "users", userId, `role: ${membership.role}`);
    return null;
  },
});

/** Renames a project (owners and admins). */
export const rename = projectMutation({
  args: { name: v.string() },
  minimumRole: "admin",
  returns: v.null(),
  handler: async (ctx, args) => {
    const name = cleanName(args.name, "Project name");
    if (name === ctx.project.name) return null;
    await ctx.db.patch("projects", args.projectId, { name });
    await recordUserAct(ctx, "project.renamed", args.projectId, "projects", args.projectId);
    return null;
  },
});

/**
 * Removes the project and everything of it (owners only): it is gone for
 * everyone at once; its rows are deleted in batches, OAuth grants revoked
 * at the provider, and the removal recorded in the caller's own audit log
 * (jobs/projectRemoval.ts).
 */
export const remove = projectMutation({
  args: {},
  minimumRole: "owner",
  returns: v.null(),
  handler: async (ctx) => {
    await removeProject(ctx, ctx.project, ctx.user._id);
    return null;
  },
});

/**
 * Each of the project's connections' latest sync (used by the HTTP API):
 * the points of its newest timestamp, read as metrics.latest reads them
 * (metrics.ts latestPointsOf): bounded by the connections and the metrics of
 * their latest syncs, however long the history.
 */
export const latestMetrics = internalQuery({
  args: { projectId: v.id("projects") },
  returns: v.array(
    v.object({ connectionId: v.id("connections"), name: v.string(), value: v.number(), timestamp: v.number() }),
  ),
  handler: async (ctx, { projectId }) => {
    const points = await latestPointsOf(ctx, projectId);
    return points.map(({ connection, name, value, timestamp }) => ({ connectionId: connection._id, name, value, timestamp }));
  },
});
